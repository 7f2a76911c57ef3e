"""The operator's rooms stay small and apart: the node and space controllers know each other
only through the interfaces passed in their constructors (nodes/space_hook.py,
space/node_feed.py), and compose.py alone wires them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[3] / "operator" / "trustspace_operator"
#: The hub collector is its own room with its own owner (see its package docstring).
ROOMS = sorted(p for p in PACKAGE.rglob("*.py") if "collector" not in p.relative_to(PACKAGE).parts)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize(
    ("room", "other"),
    [("nodes", "trustspace_operator.space"), ("space", "trustspace_operator.nodes")],
)
def test_the_node_and_space_controllers_do_not_import_each_other(room: str, other: str) -> None:
    for path in (PACKAGE / room).glob("*.py"):
        wrong = sorted(m for m in _imports(path) if m == other or m.startswith(other + "."))
        assert not wrong, f"{path.name} imports {wrong}"


def test_only_compose_imports_both_controllers() -> None:
    both = [
        path.name
        for path in ROOMS
        if {"trustspace_operator.nodes", "trustspace_operator.space"} <= _imports(path)
    ]
    assert both == ["compose.py"]


def test_no_file_over_500_lines_and_no_class_over_400() -> None:
    for path in ROOMS:
        text = path.read_text()
        assert text.count("\n") <= 500, f"{path.relative_to(PACKAGE)} is over 500 lines"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                assert size <= 400, f"{path.name}: class {node.name} has {size} lines"
