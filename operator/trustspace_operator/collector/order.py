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
        self._rejected: dict[str, int] = {}
        """node -> first seq of its last rejected batch (cleared when one is stored)."""

    async def apply(
        self, node: str, first_seq: int, apply: Callable[[], Awaitable[Outcome]]
    ) -> Outcome:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        while True:
            try:
                outcome = await apply()
            except Gap as gap:
                if not await self._moved(node, gap, first_seq, deadline - loop.time()):
                    raise
                continue
            await self._note(node, held=outcome.acked_seq)
            return outcome

    async def rejected(self, node: str, first_seq: int) -> None:
        """A batch of ``node`` starting at ``first_seq`` (0: unknown) was rejected."""
        await self._note(node, rejected=first_seq)

    async def _moved(self, node: str, gap: Gap, first_seq: int, seconds: float) -> bool:
        """Wait until the node holds more than ``gap.held``; False if that does not happen."""

        def progress() -> bool:
            return self._held.get(node, 0) > gap.held or self._behind_rejection(node, first_seq)

        if seconds <= 0:
            return False
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(progress), seconds)
            except TimeoutError:
                return False
        if self._behind_rejection(node, first_seq):
            gap.after_rejection = True
            return False
        return True

    def _behind_rejection(self, node: str, first_seq: int) -> bool:
        rejected = self._rejected.get(node)
        return rejected is not None and rejected < first_seq

    async def _note(self, node: str, held: int | None = None, rejected: int | None = None) -> None:
        async with self._changed:
            if held is not None:
                self._held[node] = max(held, self._held.get(node, 0))
                self._rejected.pop(node, None)
            if rejected is not None:
                self._rejected[node] = rejected
            self._changed.notify_all()
