"""Where the collector reports node status: a small sink interface and a rate limiter.

* :class:`NullSink` - does nothing;
* :class:`FileSink` - appends one JSON line per report (tests, debugging without Kubernetes);
* :class:`KubernetesSink` - server-side apply on ``DataSpaceNode`` ``/status`` with its own
  field manager (:data:`FIELD_MANAGER`), and a Warning Event when streaming breaks.

The collector owns part of a status the operator also writes: ``audit``,
``lastHeartbeatTime``, ``policyBundle`` and the conditions ``AuditStreaming`` and
``AuditBackpressure``. Conditions are a list-map keyed by ``type``, so server-side apply
merges each manager's entries; a read-modify-write of the whole list would race with the
operator and could wipe its conditions. Server-side apply also drops fields a manager owned
but left out, so every write sends the full set of fields the collector owns for that node.

:class:`StatusReporter` makes status a bounded-rate write: the ingest path only updates an
in-memory record; a periodic flush writes each changed node at most once per period, as one
apply. A stream that breaks is written at once unless that node was written less than one
period ago (then it goes out with the next flush): a misbehaving agent cannot turn its
rejected batches into API-server load.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from trustspace import clock
from trustspace.api.conditions import Condition, find_condition, set_condition
from trustspace.api.constants import (
    DATASPACENODE_KIND,
    GROUP,
    VERSION,
    NodeConditionType,
    NodeReason,
)
from trustspace.kube import ApiError, Kube, NotFound, Obj, Unreachable
from trustspace.kube import kinds as k
from trustspace.onethread import OneThread

log = logging.getLogger(__name__)

#: The collector's field manager on DataSpaceNode status (the operator's is
#: ``trustspace-operator``).
FIELD_MANAGER = "trustspace-collector"
#: The buffer share from which ``AuditBackpressure`` turns True (appends fail at 100%).
BACKPRESSURE_RATIO = 0.8
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
#: Stream changes kept between two writes of a node (a flapping stream stays bounded).
MAX_STREAMING_CHANGES = 8


@dataclass(frozen=True)
class AuditProgress:
    last_sequence: int
    last_event_time: str | None
    lag_seconds: float | None


@dataclass(frozen=True)
class Heartbeat:
    """What an agent reported in one heartbeat (fields it did not send are None)."""

    at: str
    last_seq: int | None = None
    acked_seq: int | None = None
    backpressure: bool | None = None
    buffer_used_bytes: int | None = None
    buffer_max_bytes: int | None = None
    policy_version: int | None = None
    policy_hash: str | None = None
    policy_applied_at: str | None = None
    trust_bundle_hash: str | None = None

    @property
    def buffered_records(self) -> int | None:
        if self.last_seq is None or self.acked_seq is None:
            return None
        return max(0, self.last_seq - self.acked_seq)

    @classmethod
    def parse(cls, body: bytes, at: str) -> Heartbeat:
        """Lenient: a field of the wrong type is ignored, never an error (the body is signed
        by the node, but an older agent may send less)."""
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return cls(at)
        if not isinstance(data, dict):
            return cls(at)

        def count(name: str, src: dict[str, Any] = data) -> int | None:
            v = src.get(name)
            return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None

        def digest(name: str, src: dict[str, Any]) -> str | None:
            v = src.get(name)
            return v if isinstance(v, str) and _HEX64.match(v) else None

        policy = data.get("policyBundle")
        policy = policy if isinstance(policy, dict) else {}
        applied = policy.get("appliedAt")
        backpressure = data.get("backpressure")
        return cls(
            at=at,
            last_seq=count("lastSeq"),
            acked_seq=count("ackedSeq"),
            backpressure=backpressure if isinstance(backpressure, bool) else None,
            buffer_used_bytes=count("bufferUsedBytes"),
            buffer_max_bytes=count("bufferMaxBytes"),
            policy_version=count("version", policy),
            policy_hash=digest("hash", policy),
            policy_applied_at=applied if isinstance(applied, str) and _is_time(applied) else None,
            trust_bundle_hash=digest("trustBundleHash", data),
        )


@dataclass(frozen=True)
class Streaming:
    ok: bool
    reason: str
    message: str
    at: dt.datetime | None = None
    """When the collector saw it (the condition's transition time, even if written later)."""


@dataclass(frozen=True)
class NodeUpdate:
    """What changed for one node since its last write."""

    progress: AuditProgress | None = None
    heartbeat: Heartbeat | None = None
    streaming: tuple[Streaming, ...] = ()
    """AuditStreaming changes in order (the condition takes the last; each failure gets its
    Event). At most :data:`MAX_STREAMING_CHANGES`, the newest."""

    def merge(self, other: NodeUpdate) -> NodeUpdate:
        return NodeUpdate(
            progress=other.progress or self.progress,
            heartbeat=other.heartbeat or self.heartbeat,
            streaming=(self.streaming + other.streaming)[-MAX_STREAMING_CHANGES:],
        )


class StatusSink(Protocol):
    def write(self, node: str, update: NodeUpdate) -> None: ...


class NullSink:
    def write(self, node: str, update: NodeUpdate) -> None:
        pass


class FileSink:
    """One JSON line per part of an update: ``audit``, ``heartbeat``, ``AuditStreaming``."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()

    def write(self, node: str, update: NodeUpdate) -> None:
        lines: list[dict[str, Any]] = []
        if update.progress is not None:
            lines.append({"node": node, "type": "audit", **update.progress.__dict__})
        if update.heartbeat is not None:
            hb = update.heartbeat
            lines.append(
                {
                    "node": node,
                    "type": "heartbeat",
                    "at": hb.at,
                    "bufferedRecords": hb.buffered_records,
                    "backpressure": hb.backpressure,
                    "policyHash": hb.policy_hash,
                    "trustBundleHash": hb.trust_bundle_hash,
                }
            )
        for s in update.streaming:
            lines.append(
                {
                    "node": node,
                    "type": "AuditStreaming",
                    "status": "True" if s.ok else "False",
                    "reason": s.reason,
                    "message": s.message,
                }
            )
        with self._lock, self._path.open("a") as f:
            for line in lines:
                f.write(json.dumps(line, sort_keys=True) + "\n")


def reason_of(code: str) -> str:
    """Machine code ``bad_signature`` -> condition reason ``BadSignature``."""
    return "".join(part.capitalize() for part in code.split("_"))


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


def _is_time(value: str) -> bool:
    try:
        clock.parse(value)
    except ValueError:
        return False
    return True


class EventPoster(Protocol):
    def post(self, obj: Obj, type_: Any, reason: str, message: str) -> None: ...


@dataclass
class _NodeView:
    """Everything the collector owns in one node's status, as last applied."""

    meta: Obj
    audit: dict[str, Any] = field(default_factory=dict)
    heartbeat_time: str | None = None
    policy: dict[str, Any] | None = None
    conditions: list[Condition] = field(default_factory=list)

    @classmethod
    def from_object(cls, obj: Obj) -> _NodeView:
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


class KubernetesSink:
    """Server-side apply on ``dataspacenodes/<node>/status`` in `namespace`.

    The first write for a node reads the object once (to keep ``lastTransitionTime`` of a
    condition whose status does not change, and the values the collector wrote before it
    restarted); later writes use what the last apply returned.
    """

    def __init__(
        self,
        namespace: str,
        kube: Kube,
        events: EventPoster | None = None,
        clock: Callable[[], dt.datetime] = clock.now,
    ) -> None:
        from trustspace_operator.events import EventRecorder

        self._namespace = namespace
        self._kube = kube
        self._events: EventPoster = events or EventRecorder(kube, component=FIELD_MANAGER)
        self._clock = clock
        self._nodes: dict[str, _NodeView] = {}
        self._lock = threading.Lock()
        self.writes = 0
        """Status applies sent (tests and metrics)."""

    def _path(self, node: str) -> str:
        return k.DATASPACENODE.path(self._namespace, node) + "/status"

    def _view(self, node: str) -> _NodeView | None:
        view = self._nodes.get(node)
        if view is not None:
            return view
        try:
            obj = self._kube.get(k.DATASPACENODE, node, self._namespace)
        except (ApiError, Unreachable) as exc:
            log.warning("cannot read DataSpaceNode %s/%s: %s", self._namespace, node, exc)
            return None
        if obj is None:
            log.warning("no DataSpaceNode %s/%s: status not written", self._namespace, node)
            return None
        view = self._nodes[node] = _NodeView.from_object(obj)
        return view

    def write(self, node: str, update: NodeUpdate) -> None:
        with self._lock:
            view = self._view(node)
            if view is None:
                return
            failures = view.merge(update, self._clock())
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": DATASPACENODE_KIND,
                "metadata": {"name": node, "namespace": self._namespace},
                "status": view.status(),
            }
            try:
                self.writes += 1
                live = self._kube.request(
                    "PATCH",
                    self._path(node),
                    query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
                    body=body,
                    content_type="application/apply-patch+yaml",
                )
                view.meta = live.get("metadata") or view.meta
            except NotFound:
                # Deleted (or not created yet): forget it; a new object starts fresh.
                self._nodes.pop(node, None)
                log.warning(
                    "DataSpaceNode %s/%s is gone: status not written", self._namespace, node
                )
                return
            except (ApiError, Unreachable) as exc:
                # The view keeps the state: the next write carries it.
                log.warning("status apply for %s/%s failed: %s", self._namespace, node, exc)
            obj = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": DATASPACENODE_KIND,
                "metadata": {"namespace": self._namespace, "name": node, **view.meta},
            }
            for failure in failures:
                self._events.post(obj, "Warning", failure.reason, failure.message)


class StatusReporter:
    """Rate-limits sink writes: a periodic flush writes each changed node once, skipping a
    node written less than half a period ago; a broken stream goes out at once only if the
    node's last write is at least a period old. So a node costs at most two writes per
    period, whatever the event rate. Sink calls run in order on one thread (the Kubernetes
    client blocks)."""

    def __init__(
        self,
        sink: StatusSink,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], dt.datetime] = clock.now,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._wall = wall
        self._pending: dict[str, NodeUpdate] = {}
        self._streaming: dict[str, tuple[bool, str]] = {}
        self._last_write: dict[str, float] = {}
        self._writer = OneThread(sink, "collector-status")

    def _add(self, node: str, update: NodeUpdate) -> None:
        self._pending[node] = self._pending.get(node, NodeUpdate()).merge(update)

    def progress(self, node: str, progress: AuditProgress) -> None:
        self._add(node, NodeUpdate(progress=progress))

    def heartbeat(self, node: str, heartbeat: Heartbeat) -> None:
        self._add(node, NodeUpdate(heartbeat=heartbeat))

    async def streaming(self, node: str, ok: bool, reason: str, message: str) -> None:
        if self._streaming.get(node) == (ok, reason):
            return
        self._streaming[node] = (ok, reason)
        self._add(node, NodeUpdate(streaming=(Streaming(ok, reason, message, self._wall()),)))
        last = self._last_write.get(node)
        if not ok and (last is None or self._clock() - last >= self._interval):
            await self._write(node)

    async def _write(self, node: str) -> None:
        update = self._pending.pop(node, None)
        if update is None:
            return
        self._last_write[node] = self._clock()
        await self._writer.call(lambda sink: sink.write(node, update))

    async def flush(self, *, force: bool = False) -> None:
        """Write every node with pending changes, except (unless `force`) one written less
        than half a period ago: it waits for the next flush."""
        now = self._clock()
        for node in list(self._pending):
            last = self._last_write.get(node)
            if not force and last is not None and now - last < self._interval / 2:
                continue
            try:
                await self._write(node)
            except Exception:  # one node's failure must not stop the others
                log.exception("status write for %s failed", node)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    def close(self) -> None:
        self._writer.shutdown()
