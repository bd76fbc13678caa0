"""The package's layers point one way: no subpackage imports, directly or through others,
a subpackage that imports it (docs/design.md draws the layers). Imports only for type
checking do not count; imports inside functions do."""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict
from pathlib import Path

import wheelhouse

PACKAGE = Path(wheelhouse.__file__).parent


def _unit(path: Path) -> str:
    """The subpackage (or top-level module) ``path`` belongs to."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _runtime_imports(tree: ast.AST) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for other in node.orelse:
                visit(other)
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _graph() -> dict[str, dict[str, str]]:
    """unit -> {imported unit: where (the first file:line that imports it)}."""
    graph: dict[str, dict[str, str]] = defaultdict(dict)
    for path in sorted(PACKAGE.rglob("*.py")):
        unit = _unit(path)
        for module, line in _runtime_imports(ast.parse(path.read_text(), str(path))):
            parts = module.split(".")
            if parts[0] != "wheelhouse" or len(parts) < 2 or parts[1] == unit:
                continue
            where = f"{path.relative_to(PACKAGE.parent)}:{line}"
            graph[unit].setdefault(parts[1], where)
    return graph


def _cycle(graph: dict[str, dict[str, str]]) -> list[str] | None:
    """One cycle of ``graph`` as its edges with where each is made, or None."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def walk(unit: str) -> list[str] | None:
        state[unit] = 1
        path.append(unit)
        for target in sorted(graph.get(unit, {})):
            if state.get(target) == 1:
                loop = [*path[path.index(target) :], target]
                return [f"{a} -> {b} ({graph[a][b]})" for a, b in itertools.pairwise(loop)]
            if target not in state and (found := walk(target)):
                return found
        path.pop()
        state[unit] = 2
        return None

    for unit in sorted(graph):
        if unit not in state and (found := walk(unit)):
            return found
    return None


def test_the_layers_have_no_cycle() -> None:
    assert _cycle(_graph()) is None


def test_only_the_entry_point_imports_the_command_line() -> None:
    importers = sorted(unit for unit, targets in _graph().items() if "cli" in targets)
    assert importers == ["_main"]


def test_the_checker_sees_a_cycle() -> None:
    graph = {"a": {"b": "a.py:1"}, "b": {"c": "b.py:2"}, "c": {"a": "c.py:3"}}
    assert _cycle(graph) == ["a -> b (a.py:1)", "b -> c (b.py:2)", "c -> a (c.py:3)"]
    assert _cycle({"a": {"b": "a.py:1"}, "b": {}}) is None


def test_type_checking_imports_do_not_count() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import wheelhouse.cli\n"
        "else:\n    import wheelhouse.house\ndef f():\n    from wheelhouse.simple import x\n"
    )
    assert [m for m, _ in _runtime_imports(tree)] == [
        "typing",
        "wheelhouse.house",
        "wheelhouse.simple",
    ]
