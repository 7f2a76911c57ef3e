"""Signs checkpoints over the global log every few seconds or every N new entries.

The right edge of the tree (:class:`~trustspace.audit.merkle.CompactRange`) stays in memory, so
a checkpoint costs only the hashes of the entries added since the last one. At start it is
rebuilt from the stored leaf hashes (one sequential read).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging

from trustspace import clock
from trustspace.audit import merkle
from trustspace.audit.checkpoint import Checkpoint, sign_checkpoint
from trustspace.audit.keyfile import KeyFile
from trustspace.onethread import OneThread
from trustspace_operator.collector.storage import CollectorStorage, StoredCheckpoint

log = logging.getLogger(__name__)
# Pages small enough that hashing one (on the event loop) does not hold up ingest for long.
READ_PAGE = 4096


class Checkpointer:
    def __init__(
        self,
        db: OneThread[CollectorStorage],
        keys: KeyFile,
        origin: str,
        key_name: str,
        interval: float,
        every: int,
    ) -> None:
        self._db = db
        self._keys = keys
        self._origin = origin
        self._key_name = key_name
        self._interval = interval
        self._every = every
        self._compact = merkle.CompactRange()
        self._wake = asyncio.Event()
        self._signed = asyncio.Condition()
        self.latest: StoredCheckpoint | None = None

    def nudge(self, leaves: int) -> None:
        """Called after new leaves were stored; a big enough backlog checkpoints at once."""
        if leaves - self._compact.size >= self._every:
            self._wake.set()

    def request(self) -> None:
        self._wake.set()

    async def wait_for_size(self, size: int, timeout: float) -> StoredCheckpoint:  # noqa: ASYNC109
        """A checkpoint covering at least ``size`` leaves (asks for one if needed)."""
        async with asyncio.timeout(timeout), self._signed:
            while self.latest is None or self.latest.size < size:
                self.request()
                await self._signed.wait()
        assert self.latest is not None
        return self.latest

    async def checkpoint(self) -> StoredCheckpoint | None:
        count = await self._db.call(lambda s: s.leaf_count())
        while self._compact.size < count:
            start = self._compact.size
            end = min(count, start + READ_PAGE)
            for h in await self._db.call(functools.partial(_leaf_hashes, start=start, end=end)):
                self._compact.append(h)
        if self.latest is not None and self.latest.size == self._compact.size:
            return self.latest
        cp = Checkpoint(self._origin, self._compact.size, self._compact.root())
        note = sign_checkpoint(cp, self._key_name, self._keys.get())
        stored = StoredCheckpoint(cp.size, cp.root_hash, note, clock.rfc3339_micro())
        await self._db.call(lambda s: s.save_checkpoint(stored))
        async with self._signed:
            self.latest = stored
            self._signed.notify_all()
        return stored

    async def run(self) -> None:
        self.latest = await self._db.call(lambda s: s.latest_checkpoint())
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            self._wake.clear()
            try:
                await self.checkpoint()
            except Exception:
                log.exception("checkpoint failed")


def _leaf_hashes(storage: CollectorStorage, start: int, end: int) -> list[bytes]:
    return storage.leaf_hashes(start, end)
