"""Where the collector reports node status: a small sink interface and a rate limiter.

* :class:`NullSink` - does nothing;
* :class:`FileSink` - appends one JSON line per report (tests, debugging without Kubernetes);
* :class:`KubernetesSink` - patches ``DataSpaceNode`` status (``audit``, ``lastHeartbeatTime``,
  the ``AuditStreaming`` condition) and posts an Event when streaming breaks.

:class:`StatusReporter` makes audit progress a bounded-rate write: the ingest path only
updates an in-memory dict; a periodic flush writes each changed node at most once per period.
A broken stream is reported at once (it is rare, and operators need it fast).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditProgress:
    last_sequence: int
    last_event_time: str | None
    lag_seconds: float | None


class StatusSink(Protocol):
    def audit(self, node: str, progress: AuditProgress) -> None: ...
    def heartbeat(self, node: str, at: str) -> None: ...
    def streaming(self, node: str, ok: bool, reason: str, message: str) -> None: ...


class NullSink:
    def audit(self, node: str, progress: AuditProgress) -> None:
        pass

    def heartbeat(self, node: str, at: str) -> None:
        pass

    def streaming(self, node: str, ok: bool, reason: str, message: str) -> None:
        pass


class FileSink:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()

    def _write(self, record: dict[str, Any]) -> None:
        with self._lock, self._path.open("a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")

    def audit(self, node: str, progress: AuditProgress) -> None:
        self._write({"node": node, "type": "audit", **progress.__dict__})

    def heartbeat(self, node: str, at: str) -> None:
        self._write({"node": node, "type": "heartbeat", "at": at})

    def streaming(self, node: str, ok: bool, reason: str, message: str) -> None:
        self._write(
            {
                "node": node,
                "type": "AuditStreaming",
                "status": "True" if ok else "False",
                "reason": reason,
                "message": message,
            }
        )


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


class KubernetesSink:
    """Writes to the DataSpaceNode status subresource in ``namespace`` (node name = object)."""

    def __init__(self, namespace: str, api_client: Any = None) -> None:
        from kubernetes import client

        self._namespace = namespace
        self._api = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)

    def _patch(self, node: str, status: dict[str, Any]) -> None:
        from trustspace.api.constants import DATASPACENODE_PLURAL, GROUP, VERSION

        try:
            self._api.patch_namespaced_custom_object_status(
                GROUP, VERSION, self._namespace, DATASPACENODE_PLURAL, node, {"status": status}
            )
        except Exception as exc:  # a missing object must not stop ingest
            log.warning("status patch for %s failed: %s", node, getattr(exc, "reason", exc))

    def audit(self, node: str, progress: AuditProgress) -> None:
        audit: dict[str, Any] = {"lastSequence": progress.last_sequence}
        if progress.last_event_time:
            audit["lastEventTime"] = progress.last_event_time[:19] + "Z"
        if progress.lag_seconds is not None:
            audit["lag"] = _duration(progress.lag_seconds)
        self._patch(node, {"audit": audit})

    def heartbeat(self, node: str, at: str) -> None:
        self._patch(node, {"lastHeartbeatTime": at[:19] + "Z"})

    def streaming(self, node: str, ok: bool, reason: str, message: str) -> None:
        from trustspace.api.constants import DATASPACENODE_PLURAL, GROUP, VERSION

        try:
            obj: Any = self._api.get_namespaced_custom_object_status(
                GROUP, VERSION, self._namespace, DATASPACENODE_PLURAL, node
            )
        except Exception as exc:
            log.warning("cannot read %s: %s", node, getattr(exc, "reason", exc))
            return
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        conditions = [
            c
            for c in (obj.get("status") or {}).get("conditions", [])
            if c.get("type") != "AuditStreaming"
        ]
        old = next(
            (
                c
                for c in (obj.get("status") or {}).get("conditions", [])
                if c.get("type") == "AuditStreaming"
            ),
            None,
        )
        status = "True" if ok else "False"
        changed = old is None or old.get("status") != status
        conditions.append(
            {
                "type": "AuditStreaming",
                "status": status,
                "reason": reason,
                "message": message[:1000],
                "lastTransitionTime": now
                if changed or old is None
                else old.get("lastTransitionTime", now),
                "observedGeneration": obj.get("metadata", {}).get("generation", 1),
            }
        )
        self._patch(node, {"conditions": conditions})
        if not ok:
            self._event(obj, reason, message)

    def _event(self, obj: dict[str, Any], reason: str, message: str) -> None:
        from kubernetes import client

        meta = obj.get("metadata", {})
        now = dt.datetime.now(dt.UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{meta.get('name', 'node')}.audit-"),
            involved_object=client.V1ObjectReference(
                api_version=obj.get("apiVersion"),
                kind=obj.get("kind"),
                name=meta.get("name"),
                namespace=self._namespace,
                uid=meta.get("uid"),
            ),
            reason=reason,
            message=message[:1000],
            type="Warning",
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=client.V1EventSource(component="trustspace-collector"),
        )
        try:
            self._core.create_namespaced_event(self._namespace, event)
        except Exception as exc:
            log.warning("event for %s failed: %s", meta.get("name"), getattr(exc, "reason", exc))


class StatusReporter:
    """Rate-limits sink writes; sink calls run in a thread (the Kubernetes client blocks)."""

    def __init__(self, sink: StatusSink, interval: float) -> None:
        self._sink = sink
        self._interval = interval
        self._progress: dict[str, AuditProgress] = {}
        self._heartbeats: dict[str, str] = {}
        self._streaming: dict[str, tuple[bool, str]] = {}

    def progress(self, node: str, progress: AuditProgress) -> None:
        self._progress[node] = progress

    def heartbeat(self, node: str, at: str) -> None:
        self._heartbeats[node] = at

    async def streaming(self, node: str, ok: bool, reason: str, message: str) -> None:
        if self._streaming.get(node) == (ok, reason):
            return
        self._streaming[node] = (ok, reason)
        await asyncio.to_thread(self._sink.streaming, node, ok, reason, message)

    async def flush(self) -> None:
        progress, self._progress = self._progress, {}
        beats, self._heartbeats = self._heartbeats, {}
        for node, p in progress.items():
            await asyncio.to_thread(self._sink.audit, node, p)
        for node, at in beats.items():
            await asyncio.to_thread(self._sink.heartbeat, node, at)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            with contextlib.suppress(Exception):
                await self.flush()
