"""`audit verify` catches every flipped, dropped, reordered or truncated stored entry."""

from __future__ import annotations

import datetime as dt
import random
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from support.postgres import PostgresServer, exec_sql
from trustspace.audit import merkle
from trustspace.audit.batch import GENESIS_BATCH_HASH, seal_batch
from trustspace.audit.checkpoint import Checkpoint, sign_checkpoint
from trustspace.audit.event import GENESIS_HASH, EventFields, chain_event
from trustspace.crypto import SM2PrivateKey
from trustspace.trust import NodeKey, TrustedNode, build_bundle
from trustspace_operator.collector.ingest import apply_batch
from trustspace_operator.collector.storage import StoredCheckpoint, is_database_url, open_storage
from trustspace_operator.collector.verify import verify_storage

HUB = SM2PrivateKey.generate()
KEYS = {"edge-my": SM2PrivateKey.generate(), "edge-th": SM2PrivateKey.generate()}
BUNDLE = build_bundle(
    [
        TrustedNode(
            name=n,
            role="edge",
            jurisdiction="MY",
            keys=[NodeKey.of(k.public_key(), dt.datetime(2020, 1, 1, tzinfo=dt.UTC))],
        )
        for n, k in KEYS.items()
    ],
    serial=1,
    hub_key_id=HUB.key_id,
)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def pristine(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> str:
    """The location of a verified store: a SQLite file, or a PostgreSQL template database."""
    if backend == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        location: str = server.url(server.create_database())
    else:
        location = str(tmp_path_factory.mktemp("fuzz") / "hub.db")
    s = open_storage(location)
    for node, key in KEYS.items():
        prev, prev_batch, seq = GENESIS_HASH, GENESIS_BATCH_HASH, 1
        for _ in range(4):
            events = []
            for _ in range(5):
                e = chain_event(
                    node,
                    seq,
                    prev,
                    EventFields(actor="a", action="transfer.delivered", subject=f"{node}-{seq}"),
                )
                prev, seq = e.hash(), seq + 1
                events.append(e)
            batch = seal_batch(events, prev_batch, key)
            apply_batch(s, batch)
            prev_batch = batch.header.hash()
    s.add_document("cd" * 32, "contract", "2026-01-01T00:00:00.000000Z")
    n = s.leaf_count()
    root = merkle.root_from_hashes(s.leaf_hashes(0, n))
    note = sign_checkpoint(Checkpoint("o", n, root), "trustspace-hub", HUB)
    s.save_checkpoint(StoredCheckpoint(n, root, note, "now"))
    assert verify_storage(s, BUNDLE, HUB.public_key()).problem is None
    s.close()
    return location


def _copy(pristine: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, Any]:
    """A private copy of the pristine store and a raw connection to tamper with it."""
    if is_database_url(pristine):
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.url(server.create_database(template=pristine.rsplit("/", 1)[1]))
        return url, psycopg.connect(url, autocommit=True)
    path = tmp_path / "hub.db"
    shutil.copy(pristine, path)
    for suffix in ("-wal", "-shm"):
        if Path(pristine + suffix).exists():
            shutil.copy(pristine + suffix, str(path) + suffix)
    return str(path), sqlite3.connect(path)


def _flip(text: str, rng: random.Random) -> str:
    i = rng.randrange(len(text))
    c = "A" if text[i] != "A" else "B"
    return text[:i] + c + text[i + 1 :]


MUTATIONS = [
    "flip_event",
    "drop_event",
    "swap_events",
    "truncate_events",
    "flip_leaf",
    "drop_leaf",
    "flip_header",
    "flip_signature",
    "drop_batch",
    "flip_document",
    "swap_leaves",
]


@pytest.mark.parametrize("seed", range(60))
def test_any_single_mutation_is_caught(
    pristine: str, tmp_path: Path, seed: int, request: pytest.FixtureRequest
) -> None:
    rng = random.Random(seed)
    mutation = MUTATIONS[seed % len(MUTATIONS)]
    location, conn = _copy(pristine, tmp_path, request)

    class Tamper:
        def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
            return exec_sql(conn, sql, params)

    db = Tamper()
    node = rng.choice(sorted(KEYS))
    seq = rng.randint(1, 20)
    if mutation == "flip_event":
        (body,) = db.execute(
            "SELECT body FROM events WHERE node=? AND seq=?", (node, seq)
        ).fetchone()
        db.execute("UPDATE events SET body=? WHERE node=? AND seq=?", (_flip(body, rng), node, seq))
    elif mutation == "drop_event":
        db.execute("DELETE FROM events WHERE node=? AND seq=?", (node, seq))
    elif mutation == "swap_events":
        a, b = sorted(rng.sample(range(1, 21), 2))
        ba = db.execute("SELECT body FROM events WHERE node=? AND seq=?", (node, a)).fetchone()[0]
        bb = db.execute("SELECT body FROM events WHERE node=? AND seq=?", (node, b)).fetchone()[0]
        db.execute("UPDATE events SET body=? WHERE node=? AND seq=?", (bb, node, a))
        db.execute("UPDATE events SET body=? WHERE node=? AND seq=?", (ba, node, b))
    elif mutation == "truncate_events":
        db.execute("DELETE FROM events WHERE node=? AND seq>=?", (node, seq))
    elif mutation == "flip_leaf":
        db.execute("UPDATE leaves SET hash=? WHERE idx=?", (rng.randbytes(32), rng.randrange(41)))
    elif mutation == "drop_leaf":
        db.execute("DELETE FROM leaves WHERE idx=?", (rng.randrange(41),))
    elif mutation == "swap_leaves":
        a, b = rng.sample(range(41), 2)
        ha = db.execute("SELECT hash FROM leaves WHERE idx=?", (a,)).fetchone()[0]
        hb = db.execute("SELECT hash FROM leaves WHERE idx=?", (b,)).fetchone()[0]
        db.execute("UPDATE leaves SET hash=? WHERE idx=?", (hb, a))
        db.execute("UPDATE leaves SET hash=? WHERE idx=?", (ha, b))
    elif mutation in ("flip_header", "flip_signature", "drop_batch"):
        first = rng.choice([1, 6, 11, 16])
        col = "header" if mutation == "flip_header" else "signature"
        if mutation == "drop_batch":
            db.execute("DELETE FROM batches WHERE node=? AND first_seq=?", (node, first))
        else:
            (text,) = db.execute(
                f"SELECT {col} FROM batches WHERE node=? AND first_seq=?",  # noqa: S608
                (node, first),
            ).fetchone()
            db.execute(
                f"UPDATE batches SET {col}=? WHERE node=? AND first_seq=?",  # noqa: S608
                (_flip(text, rng), node, first),
            )
    elif mutation == "flip_document":
        db.execute("UPDATE documents SET digest=?", ("ce" * 32,))
    conn.commit()
    conn.close()
    report = verify_storage(open_storage(location), BUNDLE, HUB.public_key())
    assert report.problem is not None, mutation
