"""Pipelined batches of one node are applied in sequence order; real gaps are still gaps."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from trustspace.audit.batch import GENESIS_BATCH_HASH, Batch, seal_batch
from trustspace.audit.event import GENESIS_HASH, EventFields, chain_event
from trustspace.crypto import SM2PrivateKey
from trustspace_operator.collector.ingest import Gap, Outcome, apply_batch
from trustspace_operator.collector.order import NodeOrder
from trustspace_operator.collector.storage import SqliteStorage

KEY = SM2PrivateKey.generate()


def batches(count: int, size: int) -> list[Batch]:
    out, prev, prev_batch, seq = [], GENESIS_HASH, GENESIS_BATCH_HASH, 1
    for _ in range(count):
        events = []
        for _ in range(size):
            e = chain_event("edge-my", seq, prev, EventFields(actor="a", action="x", subject="s"))
            prev, seq = e.hash(), seq + 1
            events.append(e)
        out.append(seal_batch(events, prev_batch, KEY))
        prev_batch = out[-1].header.hash()
    return out


def _run(order: NodeOrder, store: SqliteStorage, batch: Batch, delay: float = 0.0) -> object:
    async def one() -> Outcome:
        await asyncio.sleep(delay)
        return await order.apply(
            batch.header.node, batch.header.first_seq, lambda: _apply(store, batch)
        )

    return one()


async def _apply(store: SqliteStorage, batch: Batch) -> Outcome:
    await asyncio.sleep(0)  # like the storage thread: the caller yields
    return apply_batch(store, batch)


def test_a_batch_that_overtakes_its_predecessor_waits_for_it(tmp_path: Path) -> None:
    store = SqliteStorage(tmp_path / "hub.db")
    b1, b2, b3 = batches(3, 4)

    async def main() -> list[Outcome]:
        order = NodeOrder(wait=5.0)
        # b3 and b2 arrive first; b1 only after 0.2 s.
        return await asyncio.gather(
            _run(order, store, b3),  # type: ignore[arg-type]
            _run(order, store, b2),  # type: ignore[arg-type]
            _run(order, store, b1, delay=0.2),  # type: ignore[arg-type]
        )

    outcomes = asyncio.run(main())
    assert sorted(o.acked_seq for o in outcomes) == [4, 8, 12]
    assert store.node_state(b1.header.node).last_seq == 12


def test_a_real_gap_is_rejected_after_the_wait(tmp_path: Path) -> None:
    store = SqliteStorage(tmp_path / "hub.db")
    _, b2 = batches(2, 4)

    async def main() -> None:
        await _run(NodeOrder(wait=0.3), store, b2)

    started = time.monotonic()
    with pytest.raises(Gap) as caught:
        asyncio.run(main())
    assert 0.3 <= time.monotonic() - started < 3
    assert caught.value.code == "gap" and not caught.value.after_rejection


def test_batches_behind_a_rejected_one_give_up_at_once(tmp_path: Path) -> None:
    store = SqliteStorage(tmp_path / "hub.db")
    b1, b2, b3 = batches(3, 4)

    async def main() -> Gap:
        order = NodeOrder(wait=30.0)
        waiting = asyncio.ensure_future(_run(order, store, b3))  # type: ignore[arg-type]
        await asyncio.sleep(0.1)
        await order.rejected(b2.header.node, b2.header.first_seq)  # b2 failed its checks
        try:
            await waiting
        except Gap as gap:
            return gap
        raise AssertionError("b3 was applied over a gap")

    started = time.monotonic()
    gap = asyncio.run(main())
    assert gap.after_rejection and time.monotonic() - started < 5
    assert store.node_state(b1.header.node).last_seq == 0


def test_an_earlier_rejection_does_not_hide_a_later_real_gap(tmp_path: Path) -> None:
    store = SqliteStorage(tmp_path / "hub.db")
    b1, b2 = batches(2, 4)

    async def main() -> None:
        order = NodeOrder(wait=0.3)
        await order.rejected(b1.header.node, b1.header.first_seq)  # e.g. a forged b1, earlier
        await order.rejected(b1.header.node, 0)  # and an unreadable body
        await _run(order, store, b2)  # type: ignore[arg-type]

    with pytest.raises(Gap) as caught:
        asyncio.run(main())
    assert not caught.value.after_rejection  # so the node's condition reports this gap
