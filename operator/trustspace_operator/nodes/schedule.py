"""When a node needs a reconcile: from a watch event (`wants`) or the periodic sweep (`due`).

Pure functions of the watched node, what this process remembers of it and the time: no I/O,
cheap enough for the event loop and for a sweep over a thousand nodes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from trustspace.api.common import parse_duration
from trustspace.api.constants import ROTATE_KEY_ANNOTATION, ConditionStatus, NodeConditionType
from trustspace_operator import keys
from trustspace_operator.config import AgentRuntime, OperatorConfig
from trustspace_operator.nodes.memory import NodeMemory


def rotation_request(body: Mapping[str, Any]) -> str | None:
    ann = body.get("metadata", {}).get("annotations") or {}
    value = ann.get(ROTATE_KEY_ANNOTATION)
    return str(value) if value is not None else None


def wants(body: Mapping[str, Any], memory: NodeMemory | None) -> str | None:
    """Whether a watched version of the node asks for a reconcile, and why.

    Status-only changes (ours coming back, the collector's heartbeats) do not: the
    sweep looks at those. A generation or rotation request this process has already
    taken up does not either."""
    meta = body["metadata"]
    if meta.get("deletionTimestamp"):
        return None  # the delete handler's business
    status = body.get("status") or {}
    generation = meta.get("generation")
    if memory is None or memory.last_full is None:
        return "create" if status.get("observedGeneration") is None else "resume"
    if status.get("observedGeneration") != generation and memory.observed != generation:
        return "create" if status.get("observedGeneration") is None else "update"
    request = rotation_request(body)
    if request is not None and memory.taken_request != request:
        return "update"
    return None


def due(
    body: Mapping[str, Any],
    memory: NodeMemory,
    config: OperatorConfig,
    now_m: float,
    now: dt.datetime,
) -> str | None:
    """Whether the sweep should reconcile the node now, and why: `resync` re-reads every
    object, `timer` only the keys (the objects are watched or resynced). `now_m` is
    time.monotonic(), `now` the wall clock."""
    backoff = memory.backoff
    if backoff is not None:
        return "resync" if now_m >= backoff.next_try else None
    status = body.get("status") or {}
    if memory.last_full is None:
        # Not reconciled by this process yet: its first watch event has it queued.
        return None
    if now_m - memory.last_full >= config.resync:
        return "resync"
    generation = body["metadata"].get("generation")
    if status.get("observedGeneration") != generation and memory.observed != generation:
        return "resync"
    # A rotation in flight is driven by its own events (the annotation's update, the
    # bundle publication); the sweep only catches one left behind.
    patience = max(3 * config.tick, config.publish_wait)
    lagging = now_m - memory.last_full >= patience
    if lagging and (rotation_request(body) is not None or status.get("nextKey")):
        return "timer"
    active = status.get("activeKey") or {}
    nxt = active.get("nextRotationAt")
    if nxt and now >= keys.parse_ts(nxt):
        return "timer"
    for prev in status.get("previousKeys") or []:
        if now >= keys.parse_ts(prev["retireAt"]):
            return "timer"
    return "timer" if heartbeat_transition(body, config, now) else None


def heartbeat_transition(body: Mapping[str, Any], config: OperatorConfig, now: dt.datetime) -> bool:
    """True when AgentReady as computed now would differ from the status."""
    status = body.get("status") or {}
    spec = body.get("spec") or {}
    beat = status.get("lastHeartbeatTime")
    if beat is None:
        return False
    interval = parse_duration((spec.get("agent") or {}).get("heartbeatInterval", "30s"))
    stale = now - keys.parse_ts(beat) > interval * config.heartbeat_misses
    current = next(
        (c for c in status.get("conditions", []) if c["type"] == NodeConditionType.AGENT_READY),
        None,
    )
    if current is None:
        return True
    if stale:
        return bool(current["status"] != ConditionStatus.UNKNOWN)
    return bool(
        current["status"] != ConditionStatus.TRUE and config.agent_runtime == AgentRuntime.EXTERNAL
    )
