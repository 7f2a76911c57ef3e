"""The collector storage contract, the same for SQLite and PostgreSQL: exactly once, dense
leaf log, idempotent documents, state that survives a reopen."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.postgres import PostgresServer
from trustspace.audit import merkle
from trustspace.audit.batch import GENESIS_BATCH_HASH, Batch, seal_batch
from trustspace.audit.errors import AuditError
from trustspace.audit.event import GENESIS_HASH, EventFields, chain_event
from trustspace.audit.wire import check_wire_batch
from trustspace.crypto import SM2PrivateKey
from trustspace_operator.collector.ingest import apply_batch
from trustspace_operator.collector.storage import (
    CollectorStorage,
    StaleState,
    StoredCheckpoint,
    open_storage,
)

KEY = SM2PrivateKey.generate()
NODE = "edge-my"


def batches(count: int, size: int, node: str = NODE) -> list[Batch]:
    out = []
    prev, prev_batch, seq = GENESIS_HASH, GENESIS_BATCH_HASH, 1
    for _ in range(count):
        events = []
        for _ in range(size):
            e = chain_event(node, seq, prev, EventFields(actor="a", action="x", subject=f"s{seq}"))
            prev, seq = e.hash(), seq + 1
            events.append(e)
        b = seal_batch(events, prev_batch, KEY)
        prev_batch = b.header.hash()
        out.append(b)
    return out


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url: str = server.url(server.create_database())
        return url
    return str(tmp_path / "hub.db")


@pytest.fixture
def store(location: str) -> Iterator[CollectorStorage]:
    s = open_storage(location)
    try:
        yield s
    finally:
        s.close()


def test_exactly_once_and_precise_rejections(store: CollectorStorage) -> None:
    b1, b2, b3 = batches(3, 4)
    assert apply_batch(store, b1).acked_seq == 4
    again = apply_batch(store, b1)
    assert (again.acked_seq, again.duplicate) == (4, True)
    with pytest.raises(AuditError) as gap:
        apply_batch(store, b3)
    assert gap.value.code == "gap"
    (other,) = batches(1, 4)
    forked = seal_batch(
        [chain_event(NODE, 1, GENESIS_HASH, EventFields(actor="z", action="x", subject="f"))],
        GENESIS_BATCH_HASH,
        KEY,
    )
    with pytest.raises(AuditError) as fork:
        apply_batch(store, forked)
    assert fork.value.code == "fork"
    # A write whose decision is stale (another writer moved the node) stores nothing.
    with pytest.raises(StaleState):
        store.store_batch(other, other.header.hash(), "now")
    assert apply_batch(store, b2).acked_seq == 8
    assert store.node_state(NODE).last_seq == 8
    assert [s for s, _, _ in store.event_bodies(NODE, 1, 100)] == list(range(1, 9))
    assert store.leaf_count() == 8
    assert len(store.leaf_hashes(0, 8)) == 8
    assert [b.first_seq for b in store.iter_batches(NODE)] == [1, 5]
    assert store.event_leaf_index(NODE, 6) == 5


def test_documents_checkpoints_heartbeats_survive_reopen(location: str) -> None:
    s = open_storage(location)
    b1, b2 = batches(2, 3)
    apply_batch(s, b1)
    index, entry = s.add_document("ab" * 32, "contract", "2030-01-01T00:00:00.000000Z")
    assert index == 3 and entry["name"] == "contract"
    assert s.add_document("ab" * 32, None, "later")[0] == 3, "a document is registered once"
    s.save_checkpoint(StoredCheckpoint(4, b"r" * 32, "note", "now"))
    s.save_checkpoint(StoredCheckpoint(4, b"x" * 32, "other", "now"))  # ignored: same size
    s.record_heartbeat(NODE, '{"lastSeq": 3}', "2030-01-01T00:00:01Z")
    s.record_heartbeat("edge-new", "{}", "2030-01-01T00:00:02Z")
    s.close()

    s = open_storage(location)
    try:
        assert s.leaf_count() == 4
        assert [i for i, _, _ in s.iter_leaves()] == [0, 1, 2, 3]
        cp = s.latest_checkpoint()
        assert cp is not None and (cp.size, cp.root, cp.note) == (4, b"r" * 32, "note")
        assert s.heartbeat(NODE) == ('{"lastSeq": 3}', "2030-01-01T00:00:01Z")
        assert [n.node for n in s.nodes()] == [NODE, "edge-new"]
        assert s.node_state("edge-new").last_seq == 0
        assert apply_batch(s, b2).acked_seq == 6
        assert s.leaf_count() == 7, "the leaf log continues after the document"
        assert s.event_leaf_index(NODE, 4) == 4
    finally:
        s.close()


def test_timestamps_are_kept_verbatim(store: CollectorStorage) -> None:
    (b1,) = batches(1, 2)
    apply_batch(store, b1)
    last = store.node_state(NODE).last_event_time
    assert last == b1.events[-1].time
    assert dt.datetime.fromisoformat(last.replace("Z", "+00:00")).tzinfo is not None


def test_a_batch_checked_on_the_wire_is_stored_like_the_model(store: CollectorStorage) -> None:
    b1, b2 = batches(2, 3)
    key_for = {KEY.key_id: KEY.public_key()}.__getitem__
    checked = [check_wire_batch(b.to_wire(), NODE, key_for) for b in (b1, b2)]
    assert all(c is not None for c in checked)
    for c in checked:
        assert c is not None
        apply_batch(store, c)
    state = store.node_state(NODE)
    assert (state.last_seq, state.last_hash) == (6, b2.events[-1].hash())
    assert state.last_batch_hash == b2.header.hash()
    bodies = [body for _, body, _ in store.event_bodies(NODE, 1, 6)]
    assert bodies == [e.canonical().decode() for e in (*b1.events, *b2.events)]
    for _, stored, data in store.iter_leaves():
        assert stored == merkle.leaf_hash(data)


def test_the_leaf_log_is_counted_in_the_database_not_per_handle(location: str) -> None:
    """Two handles on one database (a second collector, a restart overlapping the old
    process): each sees the other's leaves and appends after them, never on top of them."""
    first, second = open_storage(location), open_storage(location)
    try:
        (ours,) = batches(1, 3)
        (theirs,) = batches(1, 2, node="edge-de")
        apply_batch(first, ours)
        assert second.leaf_count() == 3, "a leaf written by another handle counts at once"
        apply_batch(second, theirs)
        index, _ = first.add_document("cd" * 32, None, "2030-01-01T00:00:00.000000Z")
        assert index == 5, "the next leaf after both handles' batches"
        assert first.leaf_count() == second.leaf_count() == 6
        assert [i for i, _, _ in second.iter_leaves()] == list(range(6))
        assert second.event_leaf_index("edge-de", 1) == 3
    finally:
        first.close()
        second.close()
