"""Builders for policy-core tests: nodes and policies as the API server would hand them over."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

SAMPLES = Path(__file__).resolve().parents[3] / "config" / "samples"


def node(name: str, jurisdiction: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    role = "hub" if jurisdiction == "CN" else "edge"
    return {
        "apiVersion": "trustspace.io/v1alpha1",
        "kind": "DataSpaceNode",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"role": role, "jurisdiction": jurisdiction, "endpoint": f"https://{name}.example"},
    }


def rule(
    name: str,
    action: str,
    classifications: list[str],
    categories: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "action": action, "classifications": classifications}
    if categories is not None:
        out["categories"] = categories
    if action == "review" and "approval" not in extra:
        out["approval"] = {"approvers": [{"name": f"{name}-officer", "kind": "PlatformOperator"}]}
    out.update(extra)
    return out


def policy(
    name: str,
    rules: list[dict[str, Any]],
    priority: int = 100,
    sources: dict[str, Any] | None = None,
    destinations: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "trustspace.io/v1alpha1",
        "kind": "TransferPolicy",
        "metadata": {"name": name},
        "spec": {
            "priority": priority,
            "sources": sources or {"selector": {}},
            "destinations": destinations or {"selector": {}},
            "rules": rules,
        },
    }


#: One node per state used in the tests: the hub and four edges.
NODES = [
    node("cn-hub", "CN"),
    node("vn-1", "VN"),
    node("vn-2", "VN"),
    node("sg-1", "SG"),
    node("kh-1", "KH", {"tier": "gold"}),
]


def samples() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    policies, nodes = [], []
    for path in sorted(SAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc["kind"] == "TransferPolicy":
                policies.append(doc)
            elif doc["kind"] == "DataSpaceNode":
                nodes.append(doc)
    return policies, nodes
