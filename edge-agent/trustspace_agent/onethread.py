"""Runs every call on one object on one dedicated thread (SQLite commits wait for fsync;
doing that on the event loop would stall the gateway)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

S = TypeVar("S")
T = TypeVar("T")


class OneThread(Generic[S]):
    def __init__(self, obj: S, name: str) -> None:
        self.obj = obj
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def call(self, fn: Callable[[S], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, self.obj)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
