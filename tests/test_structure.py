"""The package's shape: no import circle between its modules, and modules of a readable size.

Imports are read from the source (ast), wherever they stand: at the top, inside functions, and
under ``if TYPE_CHECKING:`` too, since a circle of annotations is still a circle for a reader.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
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
