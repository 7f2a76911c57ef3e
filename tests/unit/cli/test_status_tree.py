from __future__ import annotations

from typing import Any

import click

from trustspace.cli.status import render_tree


def _node(name: str, role: str, phase: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "space"},
        "spec": {"role": role, "jurisdiction": "CN" if role == "hub" else "VN"},
        "status": {
            "phase": phase,
            "activeKey": {"keyId": "ab" * 32, "notBefore": "2026-01-01T00:00:00Z"},
            **status,
        },
    }


def test_tree_puts_the_hub_first_and_links_under_their_source() -> None:
    nodes = [
        _node(
            "vn-hanoi", "edge", "Degraded", conditions=[{"type": "AgentReady", "status": "Unknown"}]
        ),
        _node("cn-nanning", "hub", "Ready", audit={"lastSequence": 42, "lag": "1s"}),
    ]
    links = [
        {
            "metadata": {"name": "vn-to-cn", "namespace": "space"},
            "spec": {"source": {"name": "vn-hanoi"}, "destination": {"name": "cn-nanning"}},
            "status": {
                "state": "Tripped",
                "transfers": {"allowed": 3, "denied": 9, "inReview": 1},
                "circuitBreaker": {"state": "Open", "reason": "DeniedBurst"},
            },
        }
    ]
    policies = [
        {
            "metadata": {"name": "logistics-auto", "namespace": "space"},
            "status": {
                "conditions": [{"type": "Compiled", "status": "True"}],
                "bundle": {"version": 4},
                "selectedNodes": 2,
                "syncedNodes": 1,
            },
        }
    ]
    lines = [click.unstyle(line) for line in render_tree(nodes, links, policies)]
    assert lines[0] == "data space space"
    assert lines[1].startswith("├─ cn-nanning  hub/CN  Ready")
    assert "audit seq 42 lag 1s" in lines[1]
    assert (
        lines[2].startswith("├─ vn-hanoi  edge/VN  Degraded") and "AgentReady=Unknown" in lines[2]
    )
    assert lines[3].startswith("│  └─ vn-to-cn: vn-hanoi -> cn-nanning  Tripped")
    assert "denied 9" in lines[3] and "breaker Open (DeniedBurst)" in lines[3]
    assert lines[4] == "└─ policy logistics-auto: compiled into v4, 1/2 nodes run it"
