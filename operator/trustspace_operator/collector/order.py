"""Applies each node's batches in sequence order when its agent has several in flight.

An agent pipelines a few batches (one HTTPS request each, on separate connections), so the
request for batch k+1 can finish arriving before the one for batch k. Applied as it comes,
k+1 would be a gap. Instead a batch that starts beyond what the hub holds waits, bounded by
``wait`` seconds, for this node's stored sequence to move; each time it moves, the batch is
tried again. Nothing is checked less: the storage decision (duplicate, fork, gap, broken
chain) is the same :func:`~.ingest.apply_batch` call, only retried. A real gap is still
rejected as ``gap``, after the wait.

When a batch of the node is rejected (the server reports it with :meth:`NodeOrder.rejected`),
the batches waiting behind it are rejected at once as gaps (their predecessor will not come);
``Gap.after_rejection`` marks those so the node's condition keeps the first, precise reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from trustspace_operator.collector.ingest import Gap, Outcome


class NodeOrder:
    def __init__(self, wait: float) -> None:
        self._wait = wait
        self._changed = asyncio.Condition()
        self._held: dict[str, int] = {}
        """node -> last seq known stored (only ever raised)."""
        self._rejections = 0
        self._rejected: dict[str, tuple[int, int]] = {}
        """node -> (first seq or 0 if unknown, number) of its latest rejected batch."""

    async def apply(
        self, node: str, first_seq: int, apply: Callable[[], Awaitable[Outcome]]
    ) -> Outcome:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        since = self._rejections
        while True:
            try:
                outcome = await apply()
            except Gap as gap:
                if not await self._moved(node, gap, first_seq, since, deadline - loop.time()):
                    raise
                continue
            await self._note(node, held=outcome.acked_seq)
            return outcome

    async def rejected(self, node: str, first_seq: int) -> None:
        """A batch of ``node`` starting at ``first_seq`` (0: unknown) was rejected."""
        await self._note(node, rejected=first_seq)

    async def _moved(self, node: str, gap: Gap, first_seq: int, since: int, seconds: float) -> bool:
        """Wait until the node holds more than ``gap.held``; False if that does not happen."""

        def behind_rejection() -> bool:
            # Only a rejection while this batch waited, of a batch between what the hub
            # holds and this one (or of an unreadable one), means the predecessor is gone.
            rejected = self._rejected.get(node)
            if rejected is None or rejected[1] <= since:
                return False
            return rejected[0] == 0 or gap.held < rejected[0] < first_seq

        def progress() -> bool:
            return self._held.get(node, 0) > gap.held or behind_rejection()

        if seconds <= 0:
            return False
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(progress), seconds)
            except TimeoutError:
                return False
            if behind_rejection():
                gap.after_rejection = True
                return False
        return True

    async def _note(self, node: str, held: int | None = None, rejected: int | None = None) -> None:
        async with self._changed:
            if held is not None:
                self._held[node] = max(held, self._held.get(node, 0))
            if rejected is not None:
                self._rejections += 1
                self._rejected[node] = (rejected, self._rejections)
            self._changed.notify_all()
