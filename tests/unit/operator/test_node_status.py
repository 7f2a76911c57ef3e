"""The operator's part of a node's status, computed without a control plane (nodes/status.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from trustspace.api.conditions import Condition, find_condition, set_condition
from trustspace.api.constants import ConditionStatus, NodeConditionType, NodePhase, NodeReason
from trustspace.api.dataspacenode import DataSpaceNode
from trustspace_operator import keys
from trustspace_operator.config import AgentRuntime, OperatorConfig
from trustspace_operator.nodes import status

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
HASH = "ab" * 32
EXTERNAL = OperatorConfig(agent_runtime=AgentRuntime.EXTERNAL)
KUBERNETES = OperatorConfig(agent_runtime=AgentRuntime.KUBERNETES)


def _body(**status_fields: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "vn-hanoi", "namespace": "space", "uid": "u-1", "generation": 3},
        "spec": {
            "role": "edge",
            "jurisdiction": "VN",
            "endpoint": "https://gw.example:8443",
            "agent": {"heartbeatInterval": "10s"},
        },
        "status": status_fields,
    }


def _state(staged: bool = False, rotated: bool = False) -> keys.KeyState:
    return keys.KeyState(
        active=keys.PublicKeyInfo("a" * 64, "PEM-A"),
        not_before=NOW - dt.timedelta(hours=1),
        rotated_at=NOW - dt.timedelta(hours=1) if rotated else None,
        revision=1,
        staged=keys.StagedKey("b" * 64, "PEM-B", NOW) if staged else None,
        previous=[
            keys.RetiringKey("c" * 64, "PEM-C", NOW + dt.timedelta(hours=1)),
            keys.RetiringKey("d" * 64, "PEM-D", NOW + dt.timedelta(hours=2)),
        ],
    )


def _streaming() -> list[Condition]:
    return set_condition(
        [], NodeConditionType.AUDIT_STREAMING, True, "Streaming", "batches arrive", now=NOW
    )


def _reconciled(body: dict[str, Any], config: OperatorConfig, **kw: Any) -> list[Condition]:
    node = DataSpaceNode.from_body(body)
    conditions, _ = status.reconciled_conditions(
        body,
        node,
        kw.get("sts"),
        "the hub cluster",
        _state(),
        kw.get("conditions", _streaming()),
        kw.get("expected", HASH),
        config,
        NOW,
    )
    return conditions


def _get(conditions: list[Condition], type_: str) -> Condition:
    found = find_condition(conditions, type_)
    assert found is not None
    return found


def test_a_node_whose_parts_all_report_is_ready() -> None:
    body = _body(
        lastHeartbeatTime="2026-12-04T11:59:55Z", policyBundle={"hash": HASH, "version": 1}
    )
    conditions = _reconciled(body, EXTERNAL)
    ready = _get(conditions, NodeConditionType.READY)
    assert ready.status == ConditionStatus.TRUE
    assert ready.observed_generation == 3
    assert status.phase(conditions) == NodePhase.READY


def test_missed_heartbeats_make_the_agent_unknown_and_the_node_not_ready() -> None:
    body = _body(
        lastHeartbeatTime="2026-12-04T11:58:00Z", policyBundle={"hash": HASH, "version": 1}
    )
    conditions = _reconciled(body, EXTERNAL)
    agent = _get(conditions, NodeConditionType.AGENT_READY)
    assert (agent.status, agent.reason) == (ConditionStatus.UNKNOWN, NodeReason.HEARTBEAT_MISSED)
    ready = _get(conditions, NodeConditionType.READY)
    assert ready.status == ConditionStatus.FALSE
    assert ready.message is not None and ready.message.startswith("AgentReady: no heartbeat")
    assert status.phase(conditions) == NodePhase.PROVISIONING


def test_audit_not_streaming_blocks_ready() -> None:
    body = _body(
        lastHeartbeatTime="2026-12-04T11:59:55Z", policyBundle={"hash": HASH, "version": 1}
    )
    stalled = set_condition([], NodeConditionType.AUDIT_STREAMING, False, "Stalled", "", now=NOW)
    conditions = _reconciled(body, EXTERNAL, conditions=stalled)
    assert _get(conditions, NodeConditionType.READY).status == ConditionStatus.FALSE


def test_kubernetes_agents_need_a_ready_replica() -> None:
    body = _body(lastHeartbeatTime="2026-12-04T11:59:55Z", agent={"readyReplicas": 1})
    node = DataSpaceNode.from_body(body)
    sts = {"status": {"replicas": 1, "readyReplicas": 0}}
    got, reason, message, agent = status.agent_condition(body, node, sts, KUBERNETES, NOW)
    assert (got, reason) == (ConditionStatus.FALSE, NodeReason.AGENT_UNAVAILABLE)
    assert message == "0/1 agent replicas ready"
    assert agent == {"replicas": 1, "readyReplicas": 0}
    # Without a fresh StatefulSet the last observation in the status stands.
    got, _, message, agent = status.agent_condition(body, node, None, KUBERNETES, NOW)
    assert got == ConditionStatus.TRUE
    assert message == "1/1 replicas ready, heartbeats arrive every 10s"
    assert agent == {"readyReplicas": 1}


def test_policy_synced_follows_the_published_bundle() -> None:
    running = _body(policyBundle={"hash": HASH, "version": 1})
    cases = [(None, ConditionStatus.UNKNOWN), (HASH, ConditionStatus.TRUE)]
    cases.append(("0" * 64, ConditionStatus.FALSE))
    for expected, want in cases:
        conditions = status.policy_condition(running, [], expected, 3, NOW)
        assert _get(conditions, NodeConditionType.POLICY_SYNCED).status == want


def test_phase_depends_on_ready_alone() -> None:
    assert status.phase([]) == NodePhase.PROVISIONING
    ready = set_condition([], NodeConditionType.READY, True, "Reconciled", "", now=NOW)
    assert status.phase(ready) == NodePhase.READY


def test_degraded_sets_degraded_and_not_ready_for_one_reason() -> None:
    conditions = status.degraded_conditions(_streaming(), "ApiError", "refused", 3, NOW)
    degraded = _get(conditions, NodeConditionType.DEGRADED)
    ready = _get(conditions, NodeConditionType.READY)
    assert (degraded.status, ready.status) == (ConditionStatus.TRUE, ConditionStatus.FALSE)
    assert degraded.reason == ready.reason == "ApiError"
    assert _get(conditions, NodeConditionType.AUDIT_STREAMING).status == ConditionStatus.TRUE


def test_status_document_holds_owned_conditions_and_public_keys_only() -> None:
    node = DataSpaceNode.from_body(_body())
    doc = status.status_document({}, node, _streaming(), NodePhase.READY, _state(staged=True))
    assert doc["phase"] == "Ready" and doc["observedGeneration"] == 3
    assert doc["conditions"] == []  # AuditStreaming is the collector's
    assert doc["activeKey"]["keyId"] == "a" * 64
    assert [p["keyId"] for p in doc["previousKeys"]] == ["d" * 64, "c" * 64]  # newest first
    assert doc["nextKey"]["stagedAt"] == "2026-12-04T12:00:00Z"
    assert "PRIVATE" not in repr(doc)


def test_a_failed_reconcile_keeps_the_keys_it_did_not_read() -> None:
    node = DataSpaceNode.from_body(_body())
    current = {"activeKey": {"keyId": "a"}, "previousKeys": [], "agent": {"replicas": 1}}
    kept = status.status_document(current, node, [], NodePhase.DEGRADED, None, keep_keys=True)
    assert kept["activeKey"] == {"keyId": "a"} and kept["agent"] == {"replicas": 1}
    dropped = status.status_document(current, node, [], NodePhase.DEGRADED, None)
    assert "activeKey" not in dropped
    assert not status.same_status(current, dropped)


def test_same_status_ignores_condition_times_only() -> None:
    node = DataSpaceNode.from_body(_body())
    first = status.status_document({}, node, _degraded(NOW), NodePhase.DEGRADED, None)
    later_conditions = _degraded(NOW + dt.timedelta(minutes=5))
    later = status.status_document({}, node, later_conditions, NodePhase.DEGRADED, None)
    assert status.same_status(first, later)
    other = status.status_document({}, node, _degraded(NOW, "Other"), NodePhase.DEGRADED, None)
    assert not status.same_status(first, other)


def _degraded(now: dt.datetime, reason: str = "ApiError") -> list[Condition]:
    return status.degraded_conditions([], reason, "refused", 3, now)
