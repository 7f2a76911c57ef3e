"""MirrorLink conditions: are both ends there and Ready, are the governing policies compiled.

The collector owns the traffic half of a link's status (state, counters, breaker) from the
gateways' reports; the operator owns these conditions, each side with its own server-side
apply field manager, so neither overwrites the other.
"""

from __future__ import annotations

import logging
from typing import Any

from trustspace.api.conditions import condition_dict
from trustspace.api.constants import (
    ConditionStatus,
    LinkConditionType,
    LinkReason,
)
from trustspace.kube import ApiError, Kube, Obj
from trustspace.kube import kinds as k

log = logging.getLogger(__name__)
STATUS_MANAGER = "trustspace-operator"


def _is_true(obj: Obj | None, type_: str) -> bool:
    for cond in ((obj or {}).get("status") or {}).get("conditions", []):
        if cond["type"] == type_:
            return bool(cond["status"] == ConditionStatus.TRUE)
    return False


def _condition(link: Obj, type_: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
    current = (link.get("status") or {}).get("conditions")
    return condition_dict(
        current, type_, ok, reason, message, observed_generation=link["metadata"].get("generation")
    )


def link_conditions(
    link: Obj, nodes: dict[str, Obj], policies: dict[str, Obj]
) -> list[dict[str, Any]]:
    spec = link.get("spec") or {}
    ends = [(spec.get("source") or {}).get("name"), (spec.get("destination") or {}).get("name")]
    missing = [n for n in ends if n not in nodes]
    unready = [n for n in ends if n in nodes and not _is_true(nodes[n], "Ready")]
    if missing:
        nodes_ok, n_reason, n_msg = (
            False,
            LinkReason.NODE_NOT_FOUND,
            f"no DataSpaceNode {', '.join(map(str, missing))}",
        )
    elif unready:
        nodes_ok, n_reason, n_msg = (
            False,
            LinkReason.NODE_NOT_READY,
            f"not Ready: {', '.join(map(str, unready))}",
        )
    else:
        nodes_ok, n_reason, n_msg = True, LinkReason.ESTABLISHED, "both ends are Ready"
    refs = [r.get("name") for r in spec.get("policyRefs") or []]
    absent = [r for r in refs if r not in policies]
    uncompiled = [r for r in refs if r in policies and not _is_true(policies[r], "Compiled")]
    if absent:
        p_ok, p_reason, p_msg = (
            False,
            LinkReason.POLICY_NOT_FOUND,
            f"no TransferPolicy {', '.join(map(str, absent))}",
        )
    elif uncompiled:
        p_ok, p_reason, p_msg = (
            False,
            LinkReason.POLICY_NOT_COMPILED,
            f"not compiled: {', '.join(map(str, uncompiled))}",
        )
    else:
        p_ok, p_reason, p_msg = True, LinkReason.POLICIES_RESOLVED, f"{len(refs)} policies compiled"
    tripped = ((link.get("status") or {}).get("state")) == "Tripped"
    ready = nodes_ok and p_ok and not tripped
    why = "the circuit breaker is open" if tripped else (n_msg if not nodes_ok else p_msg)
    return [
        _condition(link, LinkConditionType.NODES_READY, nodes_ok, n_reason, n_msg),
        _condition(link, LinkConditionType.POLICIES_RESOLVED, p_ok, p_reason, p_msg),
        _condition(
            link,
            LinkConditionType.READY,
            ready,
            LinkReason.ESTABLISHED
            if ready
            else (LinkReason.NODE_NOT_READY if not nodes_ok else p_reason),
            "data can flow on this link" if ready else why,
        ),
    ]


def _same(link: Obj, conditions: list[dict[str, Any]]) -> bool:
    have = {c["type"]: c for c in (link.get("status") or {}).get("conditions", [])}
    fields = ("status", "reason", "message", "observedGeneration")
    return all(
        c["type"] in have and all(have[c["type"]].get(f) == c.get(f) for f in fields)
        for c in conditions
    )


def update_links(hub: Kube, namespace: str, nodes: list[Obj], policies: list[Obj]) -> None:
    by_node = {n["metadata"]["name"]: n for n in nodes}
    by_policy = {p["metadata"]["name"]: p for p in policies}
    for link in hub.list(k.MIRRORLINK, namespace):
        conditions = link_conditions(link, by_node, by_policy)
        if _same(link, conditions):
            continue
        status = {
            "observedGeneration": link["metadata"].get("generation"),
            "conditions": conditions,
        }
        try:
            hub.apply_status(
                k.MIRRORLINK,
                link["metadata"]["name"],
                namespace,
                status,
                field_manager=STATUS_MANAGER,
            )
        except ApiError as exc:
            if exc.status != 404:
                log.warning("MirrorLink status not written: %s", exc)
