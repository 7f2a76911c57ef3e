"""docs/architecture.md stays true: the layering it describes holds in the imports, the rooms
stay small, and every room it names exists (and every room that exists is named).

Imports are read with ast, not by importing: every ``import`` counts, at module level or
inside a function or ``if TYPE_CHECKING``, since each of them is a dependency someone reads.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "trustspace": ROOT / "src" / "trustspace",
    "trustspace_operator": ROOT / "operator" / "trustspace_operator",
    "trustspace_agent": ROOT / "edge-agent" / "trustspace_agent",
}
SIDES = ("trustspace_operator", "trustspace_agent")
DOC = ROOT / "docs" / "architecture.md"

MAX_LINES = 500
MAX_CLASS_LINES = 400

#: The gateway's steps: they depend on its core, never the core on them.
GATEWAY_STEPS = frozenset(
    {"outbound", "dispatch", "reviews", "inbound", "links", "inbox", "routes", "service"}
)


@cache
def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the three packages."""
    found: dict[str, Path] = {}
    for top, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            parts = [top, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _known(name: str) -> str | None:
    """The module an imported name lives in: ``a.b.c`` is module a.b.c, or a name in a.b."""
    mods = modules()
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _imported_names(module: str, path: Path) -> Iterator[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            # `from pkg import mod` imports the module pkg.mod; `from mod import name`, mod.
            yield from (f"{base}.{alias.name}" for alias in node.names)


@cache
def imports() -> dict[str, frozenset[str]]:
    """Module -> the modules of the three packages it imports (itself left out)."""
    graph: dict[str, frozenset[str]] = {}
    for module, path in modules().items():
        targets = {_known(name) for name in _imported_names(module, path)}
        graph[module] = frozenset(t for t in targets if t is not None and t != module)
    return graph


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _circles(graph: dict[str, frozenset[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def _wrong_imports(importer: str, imported: str) -> list[str]:
    return sorted(
        f"{module} -> {target}"
        for module, targets in imports().items()
        if _in(module, importer)
        for target in targets
        if _in(target, imported)
    )


# -- layering ------------------------------------------------------------------------------


def test_the_modules_are_found() -> None:
    # A wrong root would make every check below pass on nothing.
    tops = Counter(module.split(".")[0] for module in modules())
    assert all(tops[top] > 10 for top in PACKAGES), tops
    app = "trustspace_operator.collector.collector_app"
    assert "trustspace_operator.collector.storage" in imports()[app]


def test_the_shared_package_imports_neither_side() -> None:
    assert [w for side in SIDES for w in _wrong_imports("trustspace", side)] == []


def test_the_operator_and_the_agent_never_import_each_other() -> None:
    assert _wrong_imports("trustspace_operator", "trustspace_agent") == []
    assert _wrong_imports("trustspace_agent", "trustspace_operator") == []


def test_no_import_circle() -> None:
    circles = [sorted(c) for c in _circles(dict(imports()))]
    assert circles == [], "\n".join(" <-> ".join(c) for c in circles)


def test_the_node_and_space_controllers_meet_only_in_compose() -> None:
    nodes, space = "trustspace_operator.nodes", "trustspace_operator.space"
    assert _wrong_imports(nodes, space) == []
    assert _wrong_imports(space, nodes) == []
    both = [
        module
        for module, targets in imports().items()
        if any(_in(t, nodes) for t in targets) and any(_in(t, space) for t in targets)
    ]
    assert both == ["trustspace_operator.compose"]


def test_the_gateway_core_imports_none_of_its_steps() -> None:
    steps = {f"trustspace_agent.gateway.{step}" for step in GATEWAY_STEPS}
    assert imports()["trustspace_agent.gateway.core"] & steps == set()


# -- size ----------------------------------------------------------------------------------


def _sides_files() -> list[Path]:
    return [p for p in modules().values() if not _in_shared(p)]


def _in_shared(path: Path) -> bool:
    return path.is_relative_to(PACKAGES["trustspace"])


def test_no_file_over_500_lines_and_no_class_over_400_in_the_sides() -> None:
    too_big = []
    for path in _sides_files():
        text = path.read_text()
        name = path.relative_to(ROOT)
        if len(text.splitlines()) > MAX_LINES:
            too_big.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > MAX_CLASS_LINES:
                    too_big.append(f"{name}: class {node.name} has {size} lines")
    assert too_big == [], "\n".join(too_big)


def test_no_two_modules_of_one_side_share_a_basename() -> None:
    # `collector/links.py` beside `links.py` made every traceback a guess about which one.
    for side in SIDES:
        names = Counter(p.name for p in PACKAGES[side].rglob("*.py") if p.name != "__init__.py")
        assert [n for n, count in names.items() if count > 1] == [], side


# -- the document --------------------------------------------------------------------------

#: A path written in backticks: from the repository root, or a file or folder of a package.
_PATH = re.compile(r"`([\w./-]+(?:\.py|/))`")
_FROM_ROOT = ("src/", "operator/", "edge-agent/", "tests/", "docs/")


def _named_paths() -> list[str]:
    return sorted(set(_PATH.findall(DOC.read_text())))


def test_the_document_names_paths() -> None:
    assert len([p for p in _named_paths() if p.startswith(_FROM_ROOT)]) > 20


def test_every_path_the_document_names_exists() -> None:
    everything = {
        p.relative_to(root).as_posix() + ("/" if p.is_dir() else "")
        for root in PACKAGES.values()
        for p in root.rglob("*")
        if "__pycache__" not in p.parts
    }
    missing = []
    for named in _named_paths():
        if named.startswith(_FROM_ROOT):
            if not (ROOT / named).exists() or named.endswith("/") != (ROOT / named).is_dir():
                missing.append(named)
        elif not any(p == named or p.endswith("/" + named) for p in everything):
            missing.append(named)
    assert missing == []


def test_every_subpackage_is_a_room_of_the_document() -> None:
    named = set(_named_paths())
    rooms = [
        sub.relative_to(ROOT).as_posix() + "/"
        for root in PACKAGES.values()
        for sub in sorted(root.iterdir())
        if (sub / "__init__.py").is_file()
    ]
    assert rooms
    assert [room for room in rooms if room not in named] == []
