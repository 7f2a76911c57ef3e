from __future__ import annotations

from pathlib import Path

import pytest

from trustspace.audit.batch import GENESIS_BATCH_HASH
from trustspace.audit.event import GENESIS_HASH, EventFields, verify_chain
from trustspace.crypto import SM2PrivateKey
from trustspace_agent.store import AuditBackpressure, AuditStore

F = EventFields(actor="gw", action="transfer.requested", subject="t", classification="general")


def test_append_assigns_contiguous_seq_and_chain_that_survive_reopen(tmp_path: Path) -> None:
    store = AuditStore(tmp_path / "a.db", "edge-sg", 1 << 30)
    events = store.append_many([F] * 10)
    assert [e.seq for e in events] == list(range(1, 11))
    store.close()  # stands for a crash: every returned append was committed
    store = AuditStore(tmp_path / "a.db", "edge-sg", 1 << 30)
    more = store.append(F)
    assert more.seq == 11 and more.prev == events[-1].hash()
    verify_chain([e.event() for e in [*events, more]], GENESIS_HASH, 1)
    with pytest.raises(Exception, match="belongs to node"):
        AuditStore(tmp_path / "a.db", "edge-th", 1 << 30)


def test_failed_transaction_leaves_no_trace(tmp_path: Path) -> None:
    store = AuditStore(tmp_path / "a.db", "edge-sg", 1 << 30)
    store.append(F)
    bad = EventFields.model_construct(actor="gw", action="x", subject=None)  # type: ignore[arg-type]
    with pytest.raises(Exception):  # noqa: B017 - any failure must roll back
        store.append_many([F, bad])
    assert store.last_seq == 1
    assert store.append(F).seq == 2


def test_quota_fails_closed_and_ack_compaction_frees_space(tmp_path: Path) -> None:
    key = SM2PrivateKey.generate()
    store = AuditStore(tmp_path / "a.db", "edge-sg", 96 * 1024)
    appended = 0
    with pytest.raises(AuditBackpressure, match="refusing new operations"):
        for _ in range(10_000):
            store.append_many([F] * 10)
            appended += 10
    assert store.last_seq == appended  # the refused append stored nothing, nothing was dropped
    while store.seal(key, 100):
        pass
    assert store.sealed_seq == appended
    batches = store.batches_after(0, 1000)
    assert batches[0].first_seq == 1 and batches[-1].last_seq == appended
    rebuilt = store.batch(batches[0])
    rebuilt.check_contents()
    rebuilt.verify_signature(key.public_key())
    with pytest.raises(AuditBackpressure):
        store.append(F)
    store.ack(appended)
    assert store.append(F).seq == appended + 1  # compaction made room; seq continues
    assert store.batches_after(0, 10) == []


def test_appended_bytes_are_the_models_canonical_encoding_and_seal_verifies(
    tmp_path: Path,
) -> None:
    store = AuditStore(tmp_path / "a.db", "edge-sg", 1 << 30)
    odd = EventFields(
        actor="gw",
        action="transfer.denied",
        subject='广西/\u2028"x"',
        decision="deny",
        ruleIds=["r1", "r2"],
        policyVersion=7,
        payloadDigest="cd" * 32,
        detail="tab\there\x00",
    )
    appended = store.append_many([F, odd, F])
    for a in appended:
        model = a.event()
        assert model.canonical() == a.body and model.hash() == a.hash()
    key = SM2PrivateKey.generate()
    assert store.seal(key, 2) == 2 and store.seal(key, 2) == 1
    first, second = store.batches_after(0, 10)
    rebuilt = store.batch(second)
    rebuilt.check_contents()
    rebuilt.verify_signature(key.public_key())
    assert rebuilt.header.prev_event_hash == appended[1].hash()
    assert rebuilt.header.prev_batch_hash == first.hash


def test_sealing_several_batches_in_one_commit_chains_them(tmp_path: Path) -> None:
    store = AuditStore(tmp_path / "a.db", "edge-sg", 1 << 30)
    store.append_many([F] * 23)
    key = SM2PrivateKey.generate()
    assert store.seal(key, 5, max_batches=4) == 20
    assert store.seal(key, 5, max_batches=4) == 3
    sealed = store.batches_after(0, 10)
    assert [(b.first_seq, b.last_seq) for b in sealed] == [
        (1, 5),
        (6, 10),
        (11, 15),
        (16, 20),
        (21, 23),
    ]
    prev_batch, prev_event = GENESIS_BATCH_HASH, GENESIS_HASH
    for stored in sealed:
        batch = store.batch(stored)
        batch.verify_signature(key.public_key())
        batch.check_contents()
        assert batch.header.prev_batch_hash == prev_batch
        assert batch.header.prev_event_hash == prev_event
        prev_batch, prev_event = stored.hash, batch.events[-1].hash()
    assert store.last_batch_hash == prev_batch and store.sealed_seq == 23
