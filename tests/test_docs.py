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

from tests.helpers import require_root

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
TESTS = pathlib.Path(__file__).resolve().parent


def python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(encoding="utf-8"), re.S)


def test_the_lab_page_example_runs() -> None:
    require_root("the lab page's example")
    (example,) = python_blocks("lab.md")
    done = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "b'across r1' 10.201.1.1" in done.stdout.splitlines()


PAGES = sorted(p.name for p in DOCS.glob("*.md"))


@pytest.mark.parametrize("page", PAGES)
def test_every_test_a_page_cites_exists(page: str) -> None:
    # `test_file.py::test_name` and `tests/test_file.py` references point at real tests.
    text = (DOCS / page).read_text(encoding="utf-8")
    cited = re.findall(r"`(?:tests/)?(test_\w+\.py)(?:::(test_\w+))?", text)
    assert cited or page not in ("spec.md", "lab.md", "kernel.md")
    for filename, name in cited:
        source = (TESTS / filename).read_text(encoding="utf-8")
        assert not name or re.search(rf"def {name}\(", source), f"{filename}::{name}"
    for name in re.findall(r"`(test_\w+)`", text):
        assert any(
            re.search(rf"def {name}\(", p.read_text(encoding="utf-8")) for p in TESTS.glob("*.py")
        ), name
