"""One object, used from asyncio but only ever on one worker thread of its own.

SQLite commits wait for fsync and the Kubernetes client blocks on the network; doing either
on the event loop would stall every request. One thread per object also serialises all use of
it (one SQLite connection, one status writer), so the calls run in the order they were made
and the object needs no locks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, Protocol, TypeVar, runtime_checkable

S = TypeVar("S")
T = TypeVar("T")


@runtime_checkable
class _Closable(Protocol):
    def close(self) -> None: ...


class OneThread(Generic[S]):
    """``await one.call(fn)`` runs ``fn(obj)`` on the worker thread, after every call made
    before it, and returns (or raises) what ``fn`` did."""

    def __init__(self, obj: S, name: str) -> None:
        self.obj = obj
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def call(self, fn: Callable[[S], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, self.obj)

    def shutdown(self) -> None:
        """Wait for the calls already made; the object stays open."""
        self._pool.shutdown(wait=True)

    def close(self) -> None:
        """:meth:`shutdown`, then close the object (if it can be closed)."""
        self.shutdown()
        if isinstance(self.obj, _Closable):
            self.obj.close()
