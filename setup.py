"""Build of aiomcast's optional C extension; everything else is in pyproject.toml.

The extension (aiomcast/_speedups.c) is the receive fast path, Sender.send's sendto and
send_many's sendmmsg.
It is optional: where it cannot be built (no C compiler, no Python headers) aiomcast
installs and runs on its pure-Python paths. It lives here rather than in pyproject.toml's
``ext-modules``, which setuptools still calls experimental.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "aiomcast._speedups",
            sources=["aiomcast/_speedups.c"],
            optional=True,
            extra_compile_args=["-O2", "-Wall", "-Wextra"],
        )
    ]
)
