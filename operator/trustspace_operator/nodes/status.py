"""The operator's part of a node's status, as pure functions: conditions, phase, document.

The collector owns the audit and heartbeat parts of the same status (AuditStreaming,
AuditBackpressure, lastHeartbeatTime); they are read here, never written.
"""

from __future__ import annotations

import datetime as dt

from trustspace import clock
from trustspace.api.common import parse_duration
from trustspace.api.conditions import Condition, find_condition, set_condition
from trustspace.api.constants import (
    ConditionStatus,
    NodeConditionType,
    NodePhase,
    NodeReason,
)
from trustspace.api.dataspacenode import DataSpaceNode, RotationPolicy
from trustspace.kube import Obj
from trustspace_operator import keys
from trustspace_operator.config import AgentRuntime, OperatorConfig

#: Conditions this controller owns; the collector owns AuditStreaming and AuditBackpressure.
OWNED_CONDITIONS = (
    NodeConditionType.READY,
    NodeConditionType.KEY_READY,
    NodeConditionType.AGENT_READY,
    NodeConditionType.POLICY_SYNCED,
    NodeConditionType.DEGRADED,
)
#: Conditions that keep the node from Ready while not True.
_BLOCKING = (
    NodeConditionType.KEY_READY,
    NodeConditionType.AGENT_READY,
    NodeConditionType.POLICY_SYNCED,
    NodeConditionType.AUDIT_STREAMING,
)
_OWNED_FIELDS = ("phase", "observedGeneration", "activeKey", "previousKeys", "nextKey", "agent")


def agent_condition(
    body: Obj, node: DataSpaceNode, sts: Obj | None, config: OperatorConfig, now: dt.datetime
) -> tuple[ConditionStatus, str, str, Obj]:
    """AgentReady (status, reason, message) and the status' `agent` part: from the
    StatefulSet's ready replicas (a Kubernetes runtime) and the collector's heartbeats."""
    interval = parse_duration(node.spec.agent.heartbeat_interval)
    status = body.get("status") or {}
    beat = status.get("lastHeartbeatTime")
    agent_status: Obj = {}
    ready_replicas = None
    if config.agent_runtime == AgentRuntime.KUBERNETES:
        replicas = node.spec.agent.replicas
        if sts is not None:
            ready_replicas = int(sts.get("status", {}).get("readyReplicas") or 0)
            agent_status = {
                "replicas": int(sts.get("status", {}).get("replicas") or 0),
                "readyReplicas": ready_replicas,
            }
        else:  # not re-read this time: the last observation stands
            agent_status = dict(status.get("agent") or {})
            ready_replicas = int(agent_status.get("readyReplicas") or 0)
        if ready_replicas < 1:
            return (
                ConditionStatus.FALSE,
                NodeReason.AGENT_UNAVAILABLE,
                f"{ready_replicas}/{replicas} agent replicas ready",
                agent_status,
            )
    if beat is None:
        return (
            ConditionStatus.FALSE,
            NodeReason.AGENT_UNAVAILABLE,
            "waiting for the agent's first heartbeat",
            agent_status,
        )
    age = now - keys.parse_ts(beat)
    limit = interval * config.heartbeat_misses
    if age > limit:
        return (
            ConditionStatus.UNKNOWN,
            NodeReason.HEARTBEAT_MISSED,
            f"no heartbeat for {int(age.total_seconds())}s "
            f"(expected every {node.spec.agent.heartbeat_interval})",
            agent_status,
        )
    ready = (
        ""
        if ready_replicas is None
        else f"{ready_replicas}/{node.spec.agent.replicas} replicas ready, "
    )
    every = node.spec.agent.heartbeat_interval
    return (
        ConditionStatus.TRUE,
        NodeReason.AGENT_AVAILABLE,
        f"{ready}heartbeats arrive every {every}",
        agent_status,
    )


def policy_condition(
    body: Obj,
    conditions: list[Condition],
    expected: str | None,
    gen: int | None,
    now: dt.datetime,
) -> list[Condition]:
    """PolicySynced: whether the agent reports the policy bundle the space published
    (`expected`, its hash; None before the hub's key signed one)."""
    running = (body.get("status") or {}).get("policyBundle") or {}
    if expected is None:
        return set_condition(
            conditions,
            NodeConditionType.POLICY_SYNCED,
            ConditionStatus.UNKNOWN,
            NodeReason.BUNDLE_STALE,
            "no signed bundle yet: it needs the hub node's key",
            observed_generation=gen,
            now=now,
        )
    if running.get("hash") == expected:
        return set_condition(
            conditions,
            NodeConditionType.POLICY_SYNCED,
            True,
            NodeReason.BUNDLE_APPLIED,
            f"the agent runs bundle {expected[:16]}",
            observed_generation=gen,
            now=now,
        )
    return set_condition(
        conditions,
        NodeConditionType.POLICY_SYNCED,
        False,
        NodeReason.BUNDLE_STALE,
        f"the agent has not reported bundle {expected[:16]} yet",
        observed_generation=gen,
        now=now,
    )


def reconciled_conditions(
    body: Obj,
    node: DataSpaceNode,
    sts: Obj | None,
    where: str,
    state: keys.KeyState,
    conditions: list[Condition],
    expected_bundle: str | None,
    config: OperatorConfig,
    now: dt.datetime,
) -> tuple[list[Condition], Obj]:
    """Every owned condition after a reconcile that succeeded, and the status' `agent` part."""
    gen = node.generation
    key_msg = f"SM2 key {state.active.key_id[:16]} active since {clock.rfc3339(state.not_before)}"
    if state.staged is not None:
        key_msg += f"; next key {state.staged.key_id[:16]} staged"
    reason = NodeReason.KEY_ROTATED if state.rotated_at else NodeReason.KEY_ISSUED
    conditions = set_condition(
        conditions,
        NodeConditionType.KEY_READY,
        True,
        reason,
        key_msg,
        observed_generation=gen,
        now=now,
    )
    a_status, a_reason, a_msg, agent_status = agent_condition(body, node, sts, config, now)
    conditions = set_condition(
        conditions,
        NodeConditionType.AGENT_READY,
        a_status,
        a_reason,
        a_msg,
        observed_generation=gen,
        now=now,
    )
    conditions = policy_condition(body, conditions, expected_bundle, gen, now)
    conditions = set_condition(
        conditions,
        NodeConditionType.DEGRADED,
        False,
        NodeReason.RECONCILED,
        f"objects in {where} match the spec",
        observed_generation=gen,
        now=now,
    )
    blocking = [c for c in conditions if c.type in _BLOCKING and c.status != ConditionStatus.TRUE]
    if blocking:
        ready_msg = "; ".join(f"{c.type}: {c.message or c.reason}" for c in blocking)
        ready = set_condition(
            conditions,
            NodeConditionType.READY,
            False,
            NodeReason.NOT_READY,
            ready_msg,
            observed_generation=gen,
            now=now,
        )
    else:
        ready = set_condition(
            conditions,
            NodeConditionType.READY,
            True,
            NodeReason.RECONCILED,
            "the node is provisioned, keyed, reporting and streaming audit",
            observed_generation=gen,
            now=now,
        )
    return ready, agent_status


def degraded_conditions(
    conditions: list[Condition], reason: str, message: str, gen: int | None, now: dt.datetime
) -> list[Condition]:
    """Degraded and not Ready, both for `reason`; the other conditions stay as they were."""
    conditions = set_condition(
        conditions,
        NodeConditionType.DEGRADED,
        True,
        reason,
        message,
        observed_generation=gen,
        now=now,
    )
    return set_condition(
        conditions,
        NodeConditionType.READY,
        False,
        reason,
        message,
        observed_generation=gen,
        now=now,
    )


def phase(conditions: list[Condition]) -> NodePhase:
    """Ready when the Ready condition is True; until then the node is being provisioned."""
    ready = find_condition(conditions, NodeConditionType.READY)
    if ready is not None and ready.status == ConditionStatus.TRUE:
        return NodePhase.READY
    return NodePhase.PROVISIONING


def key_status(node: DataSpaceNode, state: keys.KeyState) -> Obj:
    """The status' public key parts: activeKey, previousKeys (newest first) and nextKey."""
    rotation = node.spec.key_rotation
    active: Obj = {
        "keyId": state.active.key_id,
        "fingerprint": state.active.key_id,
        "publicKey": state.active.public_pem,
        "notBefore": clock.rfc3339(state.not_before),
    }
    if state.rotated_at:
        active["rotatedAt"] = clock.rfc3339(state.rotated_at)
    if rotation.policy == RotationPolicy.AUTOMATIC:
        active["nextRotationAt"] = clock.rfc3339(
            state.not_before + parse_duration(rotation.rotate_every)
        )
    out: Obj = {
        "activeKey": active,
        "previousKeys": [
            {
                "keyId": p.key_id,
                "fingerprint": p.key_id,
                "publicKey": p.public_pem,
                "retireAt": clock.rfc3339(p.retire_at),
            }
            for p in sorted(state.previous, key=lambda p: p.retire_at, reverse=True)
        ],
    }
    if state.staged is not None:
        out["nextKey"] = {
            "keyId": state.staged.key_id,
            "fingerprint": state.staged.key_id,
            "publicKey": state.staged.public_pem,
            "stagedAt": clock.rfc3339(state.staged.staged_at),
        }
    return out


def status_document(
    current: Obj,
    node: DataSpaceNode,
    conditions: list[Condition],
    node_phase: NodePhase,
    state: keys.KeyState | None,
    *,
    keep_keys: bool = False,
    agent_status: Obj | None = None,
) -> Obj:
    """The operator's part of the status. Without a key `state`, `keep_keys` carries the key
    and agent parts of the `current` status over (a failed reconcile did not read them)."""
    status: Obj = {
        "phase": str(node_phase),
        "observedGeneration": node.generation,
        "conditions": [
            c.model_dump(mode="json", by_alias=True, exclude_none=True)
            for c in conditions
            if c.type in OWNED_CONDITIONS
        ],
    }
    if state is not None:
        status.update(key_status(node, state))
    elif keep_keys:
        for field_name in ("activeKey", "previousKeys", "nextKey"):
            if field_name in current:
                status[field_name] = current[field_name]
    if agent_status:
        status["agent"] = agent_status
    elif keep_keys and "agent" in current:
        status["agent"] = current["agent"]
    return status


def same_status(current: Obj, new: Obj) -> bool:
    """Whether writing `new` would change nothing that matters (condition timestamps aside)."""
    if any(f in current and f not in new for f in _OWNED_FIELDS):
        return False
    for key, value in new.items():
        if key == "conditions":
            have = {c["type"]: c for c in current.get("conditions", [])}
            for cond in value:
                old = have.get(cond["type"])
                if old is None or any(
                    old.get(f) != cond.get(f)
                    for f in ("status", "reason", "message", "observedGeneration")
                ):
                    return False
        elif current.get(key) != value:
            return False
    return True
