"""The part of a DataSpaceNode's status the collector owns, and how an update folds into it.

The collector owns ``audit``, ``lastHeartbeatTime``, ``policyBundle`` and the conditions
``AuditStreaming`` and ``AuditBackpressure``; the operator writes the rest of the status.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from trustspace.api.conditions import Condition, find_condition, set_condition
from trustspace.api.constants import NodeConditionType, NodeReason
from trustspace.kube import Obj
from trustspace_operator.collector.node_reports import Heartbeat, NodeUpdate, Streaming

#: The buffer share from which ``AuditBackpressure`` turns True (appends fail at 100%).
BACKPRESSURE_RATIO = 0.8


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60}m"


def _stamp(value: str) -> str:
    """``2024-05-01T10:00:00.123456Z`` -> ``2024-05-01T10:00:00Z`` (metav1.Time precision)."""
    return value[:19] + "Z"


@dataclass
class NodeView:
    """Everything the collector owns in one node's status, as last applied."""

    meta: Obj
    audit: dict[str, Any] = field(default_factory=dict)
    heartbeat_time: str | None = None
    policy: dict[str, Any] | None = None
    conditions: list[Condition] = field(default_factory=list)

    @classmethod
    def from_object(cls, obj: Obj) -> NodeView:
        status = obj.get("status") or {}
        ours = (NodeConditionType.AUDIT_STREAMING, NodeConditionType.AUDIT_BACKPRESSURE)
        conditions = []
        for raw in status.get("conditions") or []:
            if raw.get("type") in ours:
                with contextlib.suppress(ValueError):
                    conditions.append(Condition.model_validate(raw))
        policy = status.get("policyBundle")
        return cls(
            meta=obj.get("metadata") or {},
            audit=dict(status.get("audit") or {}),
            heartbeat_time=status.get("lastHeartbeatTime"),
            policy=dict(policy) if isinstance(policy, dict) and policy.get("hash") else None,
            conditions=conditions,
        )

    @property
    def generation(self) -> int | None:
        gen = self.meta.get("generation")
        return int(gen) if isinstance(gen, int) else None

    def _set(self, type_: str, ok: bool, reason: str, message: str, now: dt.datetime) -> bool:
        """Set one of our conditions; True when its status or reason changed (or it is new)."""
        before = find_condition(self.conditions, type_)
        self.conditions = set_condition(
            self.conditions,
            type_,
            ok,
            reason,
            message,
            observed_generation=self.generation,
            now=now,
        )
        after = find_condition(self.conditions, type_)
        return (
            before is None
            or after is None
            or (before.status, before.reason) != (after.status, after.reason)
        )

    def merge(self, update: NodeUpdate, now: dt.datetime) -> list[Streaming]:
        """Fold `update` in; returns the failures that turned AuditStreaming False or changed
        its reason (each worth a Warning Event)."""
        p = update.progress
        if p is not None and p.last_sequence >= int(self.audit.get("lastSequence", 0) or 0):
            self.audit["lastSequence"] = p.last_sequence
            if p.last_event_time:
                self.audit["lastEventTime"] = _stamp(p.last_event_time)
            if p.lag_seconds is not None:
                self.audit["lag"] = _duration(p.lag_seconds)
        if (hb := update.heartbeat) is not None:
            self.heartbeat_time = _stamp(hb.at)
            if hb.buffered_records is not None:
                self.audit["bufferedRecords"] = hb.buffered_records
            if hb.policy_hash is not None and hb.policy_version:
                same = self.policy is not None and self.policy.get("hash") == hb.policy_hash
                applied = hb.policy_applied_at or (
                    self.policy.get("appliedAt") if same and self.policy else None
                )
                self.policy = {
                    "version": hb.policy_version,
                    "hash": hb.policy_hash,
                    "appliedAt": _stamp(applied) if applied else _stamp(hb.at),
                }
            self._backpressure(hb, now)
        failures = []
        for s in update.streaming:
            changed = self._set(
                NodeConditionType.AUDIT_STREAMING, s.ok, s.reason, s.message, s.at or now
            )
            if changed and not s.ok:
                failures.append(s)
        return failures

    def _backpressure(self, hb: Heartbeat, now: dt.datetime) -> None:
        used, limit = hb.buffer_used_bytes, hb.buffer_max_bytes
        share = used / limit if used is not None and limit else None
        if hb.backpressure:
            self._set(
                NodeConditionType.AUDIT_BACKPRESSURE,
                True,
                NodeReason.BUFFER_FILLING,
                "the agent's audit buffer is full: it refuses new records until the hub "
                "acknowledges what it holds",
                now,
            )
        elif share is not None and share >= BACKPRESSURE_RATIO:
            self._set(
                NodeConditionType.AUDIT_BACKPRESSURE,
                True,
                NodeReason.BUFFER_FILLING,
                f"the agent's audit buffer is {share:.0%} full "
                f"({hb.buffered_records or 0} records not yet acknowledged by the hub)",
                now,
            )
        elif hb.backpressure is not None or share is not None:
            note = f" ({share:.0%} used)" if share is not None else ""
            self._set(
                NodeConditionType.AUDIT_BACKPRESSURE,
                False,
                NodeReason.BUFFER_OK,
                f"the agent's audit buffer has room{note}",
                now,
            )

    def status(self) -> Obj:
        status: Obj = {}
        if self.audit:
            status["audit"] = dict(self.audit)
        if self.heartbeat_time:
            status["lastHeartbeatTime"] = self.heartbeat_time
        if self.policy:
            status["policyBundle"] = dict(self.policy)
        if self.conditions:
            status["conditions"] = [
                c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in self.conditions
            ]
        return status
