"""The agent's package stays in rooms of one purpose: no two modules share a basename, no
gateway module over 500 lines or class over 400, and the gateway's steps depend on its core,
never the core on a step."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

AGENT = Path(__file__).resolve().parents[3] / "edge-agent" / "trustspace_agent"
GATEWAY = AGENT / "gateway"
STEPS = {"outbound", "dispatch", "reviews", "inbound", "links", "inbox", "routes", "service"}


def test_no_two_agent_modules_share_a_basename() -> None:
    names = Counter(p.name for p in AGENT.rglob("*.py") if p.name != "__init__.py")
    assert [n for n, count in names.items() if count > 1] == []


def test_gateway_modules_and_classes_stay_small() -> None:
    too_big = []
    for path in sorted(GATEWAY.glob("*.py")):
        text = path.read_text()
        if text.count("\n") > 500:
            too_big.append(path.name)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                assert node.end_lineno is not None
                if node.end_lineno - node.lineno + 1 > 400:
                    too_big.append(f"{path.name}:{node.name}")
    assert too_big == []


def test_the_gateway_core_imports_none_of_its_steps() -> None:
    tree = ast.parse((GATEWAY / "core.py").read_text())
    imported = {
        node.module.rsplit(".", 1)[-1]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported & STEPS == set()
