"""Group commit for the gateway's audit events.

Every transfer appends several events, each of which must be durable before the transfer
proceeds (no audit, no transfer). One SQLite commit per append would cap the gateway at the
disk's fsync rate; instead appends that arrive while a commit is running wait and go into
the next commit together. Each caller still gets its own events back, or the exception
(``AuditBackpressure`` when the store is full) that refused the whole commit.
"""

from __future__ import annotations

import asyncio

from trustspace.audit.event import EventFields
from trustspace_agent.api import Appender
from trustspace_agent.store import Appended

#: Bounds one transaction (and the memory of a burst) without hurting throughput.
MAX_GROUP = 2000


class GroupAppender:
    def __init__(self, appender: Appender) -> None:
        self._appender = appender
        self._pending: list[tuple[list[EventFields], asyncio.Future[list[Appended]]]] = []
        self._running = False
        self._task: asyncio.Task[None] | None = None

    async def append(self, fields: list[EventFields]) -> list[Appended]:
        future: asyncio.Future[list[Appended]] = asyncio.get_running_loop().create_future()
        self._pending.append((fields, future))
        if not self._running:
            self._running = True
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                group: list[tuple[list[EventFields], asyncio.Future[list[Appended]]]] = []
                count = 0
                while self._pending and (
                    not group or count + len(self._pending[0][0]) <= MAX_GROUP
                ):
                    item = self._pending.pop(0)
                    group.append(item)
                    count += len(item[0])
                flat = [f for fields, _ in group for f in fields]
                try:
                    events = await self._appender.append(flat)
                except Exception as exc:  # every waiter learns why its transfer was refused
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                pos = 0
                for fields, future in group:
                    if not future.done():
                        future.set_result(events[pos : pos + len(fields)])
                    pos += len(fields)
        finally:
            self._running = False
