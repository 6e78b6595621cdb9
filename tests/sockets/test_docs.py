"""The pages under docs/: their Python examples run, and what they cite exists.

Each ```python block of a page is run as a program of its own (as root, in the suite's private
network namespace, which the child inherits), so an example cannot rot.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
TESTS = ROOT / "tests"


def python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(encoding="utf-8"), re.S)


@pytest.mark.root("the lab page's example")
def test_the_lab_page_example_runs() -> None:
    (example,) = python_blocks("lab.md")
    done = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "b'across r1' 10.201.1.1" in done.stdout.splitlines()


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
