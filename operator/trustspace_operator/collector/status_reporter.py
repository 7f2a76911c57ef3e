"""Status as a bounded-rate write: the ingest path only updates an in-memory record; a
periodic flush writes each changed node at most once per period, as one apply. A stream that
breaks is written at once unless that node was written less than one period ago (then it
goes out with the next flush): a misbehaving agent cannot turn its rejected batches into
API-server load.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable

from trustspace import clock
from trustspace.onethread import OneThread
from trustspace_operator.collector.node_reports import (
    AuditProgress,
    Heartbeat,
    NodeUpdate,
    Streaming,
)
from trustspace_operator.collector.status_sinks import StatusSink

log = logging.getLogger(__name__)


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
