"""Runs every :class:`AuditStore` call on one dedicated thread.

SQLite commits wait for fsync; doing that on the event loop would stall the HTTP API and the
shipper. One thread also serialises all access to the single connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from trustspace_agent.store import AuditStore

T = TypeVar("T")


class StoreThread:
    def __init__(self, store: AuditStore) -> None:
        self.store = store
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-store")

    async def call(self, fn: Callable[[AuditStore], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, self.store)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.store.close()
