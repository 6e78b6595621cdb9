"""The documentation: its Python examples run, what it cites exists, and it builds strictly.

Every ```python block of README.md and docs/ is a whole program, run by
``test_every_example_runs`` in a lab of two hosts: the example in ``app``, whose interfaces
``n1`` and ``n2`` stand in for the ``eth0`` and ``eth1`` the examples name, and in ``peer`` a
feeder that sends to every group and port the example names, on both nets. An example passes
when it exits 0 by itself, or, for a receiver that runs until stopped, when it has printed
what the feeder sent. The lab page's own example builds its own lab
(``test_the_lab_page_example_runs``).

The Sphinx build (docs/conf.py) is strict: ``-W -n`` turns a warning, a broken cross-reference
among them, into an error; the API reference (docs/api.rst) lists exactly the names of
``aiomcast.__all__`` and ``aiomcast.anyio.__all__``, each with its docstring.
"""

from __future__ import annotations

import html
import os
import pathlib
import re
import selectors
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

import aiomcast
import aiomcast.anyio
from aiomcast.testing import lab

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
TESTS = ROOT / "tests"
#: What the feeder sends; a receiving example prints it.
FED = b"fed by the docs test"


def python_blocks(path: pathlib.Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


@pytest.mark.root("the lab page's example")
def test_the_lab_page_example_runs() -> None:
    (example,) = python_blocks(DOCS / "lab.md")
    done = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "b'across r1' 10.201.1.1" in done.stdout.splitlines()


EXAMPLES = [
    pytest.param(code, id=f"{path.name}-{n}")
    for path in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    if path.name != "lab.md"
    for n, code in enumerate(python_blocks(path), 1)
]

FEEDER = """
import socket, sys, time
targets = [(g, int(p)) for g, p in (t.split(":") for t in sys.argv[3].split(","))]
interfaces = sys.argv[1].split(",")
payload, end = sys.argv[2].encode(), time.monotonic() + 20
socks = []
for address in interfaces:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(address))
    socks.append(s)
while time.monotonic() < end:
    for s in socks:
        for target in targets:
            s.sendto(payload, target)
    time.sleep(0.05)
"""


@pytest.fixture(scope="module")
def two_nets() -> Iterator[lab.Lab]:
    """Hosts ``app`` and ``peer`` on two nets (interfaces n1 and n2 in each)."""
    with lab.Lab(prefix="amcdoc") as net:
        net.build("hosts app peer\nnet 1 app peer\nnet 2 app peer\n")
        yield net


def _targets(code: str) -> list[str]:
    """Every IPv4 group an example names, with every port it opens, as "group:port"."""
    groups = set(re.findall(r"\"(2(?:2[4-9]|3\d)\.\d+\.\d+\.\d+)\"", code))
    opened = r"open_(?:receiver|sender|endpoint)\((?:\[[^\]]*\]|[^,]+),\s*(\d+)"
    ports = {int(port) for port in re.findall(opened, code)}
    return sorted(f"{group}:{port}" for group in groups for port in ports if port)


@pytest.mark.root("the examples run in a lab of two hosts")
@pytest.mark.timeout(120)
@pytest.mark.parametrize("code", EXAMPLES)
def test_every_example_runs(code: str, two_nets: lab.Lab) -> None:
    app, peer = two_nets["app"], two_nets["peer"]
    program = re.sub(r"\beth0\b", "n1", re.sub(r"\beth1\b", "n2", code))
    targets = _targets(code)
    feeder = None
    if targets:
        sources = f"{peer.address(1)},{peer.address(2)}"
        feeder = subprocess.Popen(
            peer.command(sys.executable, "-c", FEEDER, sources, FED.decode(), ",".join(targets))
        )
    child = subprocess.Popen(
        app.command(sys.executable, "-c", program),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err, stopped = _finish(child, FED)
    finally:
        if feeder is not None:
            feeder.kill()
            feeder.wait()
    assert b"Traceback" not in err, err.decode()
    if stopped:  # a receiver that runs until stopped: it printed what it was sent
        assert repr(FED).encode() in out
    else:
        assert child.returncode == 0, (out, err)


def _finish(child: subprocess.Popen[bytes], fed: bytes) -> tuple[bytes, bytes, bool]:
    """Wait for ``child`` to exit (60 s), or, once it has printed ``fed``, kill it.

    Returns its output, its errors and whether it was killed.
    """
    assert child.stdout is not None
    stopped = False
    out = b""
    selector = selectors.DefaultSelector()
    selector.register(child.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        if selector.select(0.1):
            out += os.read(child.stdout.fileno(), 65536)
            if repr(fed).encode() in out:
                try:  # an example that ends after what it received is given the time to
                    child.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    child.kill()
                    stopped = True
                break
    if child.poll() is None and not stopped:
        child.kill()
    rest, err = child.communicate(timeout=10)
    return out + rest, err, stopped


PAGES = sorted(p.name for p in DOCS.glob("*.md"))


@pytest.mark.parametrize("page", PAGES)
def test_every_test_a_page_cites_exists(page: str) -> None:
    # `tests/group/test_file.py::test_name`, `test_file.py::test_name` and `test_name`
    # references point at real tests.
    text = (DOCS / page).read_text(encoding="utf-8")
    cited = re.findall(r"`(tests/\w+/)?(test_\w+\.py)(?:::(test_\w+))?", text)
    assert cited or page not in ("spec.md", "lab.md", "kernel.md")
    files = {path.name: path for path in TESTS.rglob("test_*.py")}
    for folder, filename, name in cited:
        assert filename in files, filename
        path = files[filename]
        assert not folder or path.parent.name == folder.split("/")[1], f"{folder}{filename}"
        source = path.read_text(encoding="utf-8")
        assert not name or re.search(rf"def {name}\(", source), f"{filename}::{name}"
    for name in re.findall(r"`(test_\w+)`", text):
        assert any(
            re.search(rf"def {name}\(", path.read_text(encoding="utf-8")) for path in files.values()
        ), name


# -- the Sphinx build ----------------------------------------------------------------------------


def sphinx(source: pathlib.Path, out: pathlib.Path) -> subprocess.CompletedProcess[str]:
    """Build ``source`` strictly, as the README's test command does."""
    argv = [sys.executable, "-m", "sphinx", "-W", "-n", "-q", "-b", "html", str(source), str(out)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The documentation, built strictly into a temporary directory."""
    out = tmp_path_factory.mktemp("html")
    done = sphinx(DOCS, out)
    assert done.returncode == 0, done.stderr
    return out


def test_the_api_reference_lists_exactly_the_public_names(built: pathlib.Path) -> None:
    # docs/api.rst names each object by hand, grouped for a reader; it must name every public
    # name of both modules and nothing else, and each must come with its docstring.
    page = (built / "api.html").read_text(encoding="utf-8")
    listed = set(
        re.findall(r'<dt class="sig sig-object py" id="(aiomcast(?:\.anyio)?\.[\w]+)">', page)
    )
    public = {f"aiomcast.{name}" for name in aiomcast.__all__}
    public |= {f"aiomcast.anyio.{name}" for name in aiomcast.anyio.__all__}
    assert listed == public
    for name in sorted(public):
        entry = page.split(f'id="{name}">', 1)[1]
        body = entry.split("<dd>", 1)[1].split("</dd>", 1)[0]
        text = html.unescape(re.sub(r"<[^>]+>", " ", body)).split()
        assert len(text) >= 3, f"{name} has no docstring in the reference"


def test_a_broken_cross_reference_fails_the_build(tmp_path: pathlib.Path) -> None:
    # The same configuration on a page of one line: a reference to a name aiomcast does not
    # have fails the build and is named; a reference to Python's len (intersphinx) passes.
    source = tmp_path / "docs"
    shutil.copytree(DOCS / "_inventories", source / "_inventories")
    shutil.copy(DOCS / "conf.py", source / "conf.py")
    (source / "index.md").write_text("# Index\n\n{py:func}`aiomcast.no_such_function`\n")
    broken = sphinx(source, tmp_path / "broken")
    assert broken.returncode != 0
    assert "aiomcast.no_such_function" in broken.stderr
    (source / "index.md").write_text("# Index\n\n{py:func}`len`\n")
    sound = sphinx(source, tmp_path / "sound")
    assert sound.returncode == 0, sound.stderr


def test_the_readme_stays_short() -> None:
    # A newcomer reads it in five minutes; the rest belongs in docs/.
    assert len((ROOT / "README.md").read_bytes()) <= 12 * 1024
