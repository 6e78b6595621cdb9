"""The package's shape: no import circle between its modules, and modules of a readable size;
the suite's shape: tests grouped by kind, the root marker applied from the grouping.

Imports are read from the source (ast), wherever they stand: at the top, inside functions, and
under ``if TYPE_CHECKING:`` too, since a circle of annotations is still a circle for a reader.
"""

from __future__ import annotations

import ast
import pathlib
import socket
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "aiomcast"


def _dotted(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


#: Every module of the package by dotted name (aiomcast, aiomcast._endpoint, ...).
FILES = {_dotted(p): p for p in sorted(PACKAGE.rglob("*.py")) if p.stem != "__main__"}
MODULES = sorted(FILES)


def imported(module: str) -> set[str]:
    """The modules of the package that ``module`` imports (a package counts as its __init__)."""
    path = FILES[module]
    package = module if path.stem == "__init__" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
            else:
                base = ""
            target = ".".join(p for p in (base, node.module or "") if p)
            # from . import _socket: each name may be a module of its own.
            names = [f"{target}.{alias.name}" for alias in node.names]
            found.update(n for n in names if n in FILES)
            if node.module is not None:
                found.add(target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name in FILES and name != module}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary circle found by a depth-first walk, each once (as first reached)."""
    seen: set[frozenset[str]] = set()
    found: list[list[str]] = []

    def walk(node: str, path: list[str]) -> None:
        for target in sorted(graph[node]):
            if target in path:
                circle = path[path.index(target) :]
                if frozenset(circle) not in seen:
                    seen.add(frozenset(circle))
                    found.append([*circle, target])
            elif len(path) < len(graph):
                walk(target, [*path, target])

    for start in sorted(graph):
        walk(start, [start])
    return found


def test_the_walk_finds_circles() -> None:
    # The checker itself, on a graph with one circle and one without.
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back() -> None:
    graph = {module: imported(module) for module in MODULES}
    assert "aiomcast._types" in graph["aiomcast._endpoint"]  # the reader really reads imports
    assert "aiomcast._interfaces" in graph["aiomcast.testing.lab"]
    assert cycles(graph) == []


def test_the_data_types_are_a_leaf() -> None:
    # _types imports nothing of the package at run time (its annotations name two modules).
    assert imported("aiomcast._types") <= {"aiomcast._address", "aiomcast._interfaces"}
    tree = ast.parse(FILES["aiomcast._types"].read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.level == 1]
    assert top == []


def test_aiomcast_itself_never_imports_its_test_support() -> None:
    users = [m for m in MODULES if not m.startswith("aiomcast.testing")]
    assert [m for m in users if any(i.startswith("aiomcast.testing") for i in imported(m))] == []


@pytest.mark.parametrize("module", MODULES)
def test_modules_stay_readable(module: str) -> None:
    lines = FILES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= 800, f"{FILES[module].relative_to(ROOT)} has {lines} lines"


def test_the_endpoints_never_ask_which_transport_they_have() -> None:
    # One transport interface (_transport.Transport): no isinstance check of a transport, nor
    # a transport class named, in the endpoint module.
    tree = ast.parse(FILES["aiomcast._endpoint"].read_text(encoding="utf-8"))
    named = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    named |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert not named & {"FastDatagramTransport", "LoopTransport", "DatagramTransport"}


def test_tests_are_grouped_by_kind() -> None:
    # Every test module sits in one group: unit (no socket), sockets (real sockets on one
    # host), lab (namespaces, links and routers) or tools (peer programs).
    tests = ROOT / "tests"
    assert not sorted(tests.glob("test_*.py"))
    groups = {path.name for path in tests.iterdir() if (path / "__init__.py").exists()}
    assert groups == {"unit", "sockets", "lab", "tools"}


def test_unit_tests_open_no_socket() -> None:
    with pytest.raises(AssertionError, match="unit tests open no socket"):
        socket.socket()


def test_the_root_marker_follows_the_grouping() -> None:
    # Collected, not run: every lab and tool test carries the root marker, no unit test does.
    def collected(marker: str, *paths: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", marker, *paths],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode in (0, 5), done.stdout + done.stderr  # 5: nothing selected
        return [line for line in done.stdout.splitlines() if "::" in line]

    assert collected("not root", "tests/lab", "tests/tools") == []
    assert len(collected("root", "tests/lab", "tests/tools")) > 100
    assert collected("root", "tests/unit") == []
    sockets = collected("root", "tests/sockets")
    assert any("[ipv6" in node or "-ipv6" in node for node in sockets)
    assert not any(
        "ipv4-lo" in node and "test_bad_ring_search_arguments" in node for node in sockets
    )
