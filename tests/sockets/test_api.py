"""The public surface: one namespace, documented, typed, and no event-loop policy changes."""

from __future__ import annotations

import asyncio
import inspect
import os
import pathlib
import subprocess
import sys

import pytest

import aiomcast
import aiomcast.testing.lab
from aiomcast._native import speedups_available


def _public_members(obj: object) -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for name, member in vars(obj).items():
        if name.startswith("_"):
            continue
        if inspect.isfunction(member) or isinstance(member, property):
            found.append((name, member))
    return found


def test_all_lists_exactly_the_public_names() -> None:
    exported = set(aiomcast.__all__)
    assert len(exported) == len(aiomcast.__all__)
    for name in exported:
        assert hasattr(aiomcast, name), name
    public = {n for n in vars(aiomcast) if not n.startswith("_") and n not in ("cli", "lab")}
    modules = {n for n in public if inspect.ismodule(getattr(aiomcast, n))}
    assert public - modules <= exported | {"annotations"}


@pytest.mark.parametrize("name", sorted(set(aiomcast.__all__) - {"__version__"}))
def test_every_public_name_has_a_docstring(name: str) -> None:
    obj = getattr(aiomcast, name)
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        return  # constants and type aliases are documented in docs/guide.md
    assert inspect.getdoc(obj), f"{name} has no docstring"
    if inspect.isclass(obj):
        for cls in obj.__mro__:
            if cls.__module__.startswith("aiomcast"):
                for member_name, member in _public_members(cls):
                    doc = member.__doc__
                    assert doc, f"{name}.{member_name} has no docstring"


def test_lab_module_is_documented() -> None:
    assert aiomcast.testing.lab.__doc__
    for name in aiomcast.testing.lab.__all__:
        assert inspect.getdoc(getattr(aiomcast.testing.lab, name)), name


def test_errors_share_one_root() -> None:
    errors = [
        getattr(aiomcast, n)
        for n in aiomcast.__all__
        if inspect.isclass(getattr(aiomcast, n)) and issubclass(getattr(aiomcast, n), BaseException)
    ]
    assert len(errors) >= 14
    for error in errors:
        assert issubclass(error, aiomcast.AiomcastError)
    assert issubclass(aiomcast.InvalidArgumentError, ValueError)
    assert issubclass(aiomcast.KernelError, OSError)


def test_package_is_typed() -> None:
    assert (pathlib.Path(aiomcast.__file__).parent / "py.typed").exists()


def test_concrete_endpoints_are_final() -> None:
    for cls in (aiomcast.Receiver, aiomcast.Sender, aiomcast.Endpoint):
        assert getattr(cls, "__final__", False), cls


def test_run_uses_uvloop_and_leaves_the_policy_alone() -> None:
    policy = asyncio.get_event_loop_policy()

    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert aiomcast.run(which()).startswith("uvloop")
    assert aiomcast.run(which(), use_uvloop=False).startswith("asyncio")
    assert asyncio.get_event_loop_policy() is policy


def test_the_c_reader_is_built_where_ci_runs() -> None:
    # CI installs with a compiler: the extension must be there, or the fast path tests would
    # only prove its pure-Python stand-in.
    if not (os.environ.get("CI") or speedups_available()):
        pytest.skip("aiomcast._speedups was not built (no C compiler at install time)")
    assert speedups_available(), "aiomcast._speedups was not built"


def test_the_c_extension_can_be_switched_off() -> None:
    # AIOMCAST_PURE_PYTHON=1 runs the pure-Python readers, sendto and sendmmsg (the benchmark's
    # aiomcast-python row).
    code = (
        "from aiomcast._native import BatchReader, QueueIterator, c_sendto, c_sendmmsg; "
        "print(BatchReader, QueueIterator, c_sendto, c_sendmmsg)"
    )
    for value, expected in (("1", "None None None None"), ("0", "BatchReader")):
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "AIOMCAST_PURE_PYTHON": value},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if expected == "BatchReader" and not speedups_available():
            expected = "None None None"
        assert expected in out, out
        if expected == "BatchReader":
            assert "built-in function sendto" in out, out
