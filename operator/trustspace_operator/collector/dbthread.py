"""Runs every storage call on one dedicated thread (SQLite commits block on fsync)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from trustspace_operator.collector.storage import CollectorStorage

T = TypeVar("T")


class StorageThread:
    def __init__(self, storage: CollectorStorage) -> None:
        self.storage = storage
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="collector-db")

    async def call(self, fn: Callable[[CollectorStorage], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, self.storage)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.storage.close()
