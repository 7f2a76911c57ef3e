"""Where the collector keeps what it has verified: SQLite by default, or PostgreSQL
(:mod:`.pgstorage`, chosen by :func:`open_storage` from a ``postgresql://`` URL).

The interface (:class:`CollectorStorage`) is small on purpose: everything the ingest decision
needs for one node, one atomic "store this batch", the global leaf log, documents,
checkpoints and heartbeats. :class:`SqliteStorage` uses WAL with ``synchronous=FULL``; a batch
is acknowledged only after its transaction commits, so an ack always means "durable".

Not thread-safe: the collector calls it from one dedicated thread (see :mod:`.dbthread`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from trustspace.audit import merkle
from trustspace.audit.batch import GENESIS_BATCH_HASH, ShippedBatch
from trustspace.audit.event import GENESIS_HASH
from trustspace.audit.receipt import document_leaf, event_leaf, event_leaf_from_canonical


@dataclass(frozen=True)
class NodeState:
    node: str
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    last_batch_hash: str = GENESIS_BATCH_HASH
    last_event_time: str | None = None


@dataclass(frozen=True)
class StoredBatch:
    node: str
    first_seq: int
    last_seq: int
    hash: str
    header: str
    signature: str
    received_at: str


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str
    created: str


class StaleState(RuntimeError):
    """The node's state changed between the decision and the write (a concurrent request)."""


# What both backends write and read the same way; only placeholders, column types and
# bulk-insert methods differ between them.

LEAVES_JOIN = (
    "SELECT l.idx, l.hash, e.body, d.digest, d.name, d.registered_at FROM leaves l "
    "LEFT JOIN events e ON e.leaf = l.idx LEFT JOIN documents d ON d.leaf = l.idx"
)


def batch_rows(
    batch: ShippedBatch, first_leaf: int
) -> tuple[list[tuple[str, int, int, str]], list[tuple[int, bytes]]]:
    """Rows for ``events`` (node, seq, leaf, body) and ``leaves`` (idx, hash) of a batch whose
    first event takes leaf index ``first_leaf``."""
    node = batch.header.node
    events: list[tuple[str, int, int, str]] = []
    leaves: list[tuple[int, bytes]] = []
    for i, event in enumerate(batch.events):
        canonical = event.canonical()
        events.append((node, event.seq, first_leaf + i, canonical.decode()))
        leaves.append((first_leaf + i, merkle.leaf_hash(event_leaf_from_canonical(canonical))))
    return events, leaves


def batch_row(
    batch: ShippedBatch, header_hash: str, received_at: str
) -> tuple[str, int, int, str, str, str, str]:
    h = batch.header
    signature = base64.b64encode(batch.signature).decode()
    header = h.canonical().decode()
    return (h.node, h.first_seq, h.last_seq, header_hash, header, signature, received_at)


def state_after(batch: ShippedBatch, header_hash: str) -> NodeState:
    last = batch.events[-1]
    return NodeState(batch.header.node, batch.header.last_seq, last.hash(), header_hash, last.time)


def document_leaf_hash(digest: str, name: str | None, at: str) -> bytes:
    return merkle.leaf_hash(document_leaf(digest, at, name))


def document_entry(name: str | None, registered_at: str, digest: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"digest": digest, "registeredAt": registered_at}
    if name:
        entry["name"] = name
    return entry


def leaf_entry(
    idx: int, stored: bytes, body: str | None, digest: str | None, name: str | None, at: str | None
) -> tuple[int, bytes, bytes]:
    """A row of :data:`LEAVES_JOIN` as (index, stored hash, leaf data recomputed from the
    event or document the leaf stands for; empty if it stands for neither)."""
    if body is not None:
        data = event_leaf(json.loads(body))
    elif digest is not None and at is not None:
        data = document_leaf(digest, at, name)
    else:
        data = b""
    return int(idx), bytes(stored), data


class CollectorStorage(Protocol):
    def node_state(self, node: str) -> NodeState: ...
    def nodes(self) -> list[NodeState]: ...
    def batch_at(self, node: str, first_seq: int) -> StoredBatch | None: ...
    def store_batch(self, batch: ShippedBatch, header_hash: str, received_at: str) -> NodeState: ...
    def record_heartbeat(self, node: str, body: str, at: str) -> None: ...
    def heartbeat(self, node: str) -> tuple[str, str] | None: ...
    def add_document(
        self, digest: str, name: str | None, at: str
    ) -> tuple[int, dict[str, Any]]: ...
    def leaf_count(self) -> int: ...
    def leaf_hashes(self, start: int, end: int) -> list[bytes]: ...
    def event_leaf_index(self, node: str, seq: int) -> int | None: ...
    def save_checkpoint(self, cp: StoredCheckpoint) -> None: ...
    def latest_checkpoint(self) -> StoredCheckpoint | None: ...
    def iter_batches(self, node: str) -> Iterator[StoredBatch]: ...
    def event_bodies(self, node: str, first: int, last: int) -> list[tuple[int, str, int]]: ...
    def iter_leaves(self) -> Iterator[tuple[int, bytes, bytes]]: ...
    def close(self) -> None: ...


#: Both backends' tables; ``{int}`` and ``{blob}`` are the backend's 64-bit integer and
#: byte-string types (SQLite's ``INTEGER PRIMARY KEY`` is its rowid, as wanted here).
SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
  node TEXT PRIMARY KEY, last_seq {int} NOT NULL, last_hash TEXT NOT NULL,
  last_batch_hash TEXT NOT NULL, last_event_time TEXT,
  heartbeat TEXT, heartbeat_at TEXT);
CREATE TABLE IF NOT EXISTS batches (
  node TEXT NOT NULL, first_seq {int} NOT NULL, last_seq {int} NOT NULL,
  hash TEXT NOT NULL, header TEXT NOT NULL, signature TEXT NOT NULL, received_at TEXT NOT NULL,
  PRIMARY KEY (node, first_seq));
CREATE TABLE IF NOT EXISTS events (
  node TEXT NOT NULL, seq {int} NOT NULL, leaf {int} NOT NULL UNIQUE, body TEXT NOT NULL,
  PRIMARY KEY (node, seq));
CREATE TABLE IF NOT EXISTS documents (
  digest TEXT PRIMARY KEY, name TEXT, registered_at TEXT NOT NULL,
  leaf {int} NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS leaves (idx {int} PRIMARY KEY, hash {blob} NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
  size {int} PRIMARY KEY, root {blob} NOT NULL, note TEXT NOT NULL, created TEXT NOT NULL);
"""


class SqliteStorage:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA.format(int="INTEGER", blob="BLOB"))
        row = self._db.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM leaves").fetchone()
        self._leaves = int(row[0])

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- nodes -----------------------------------------------------------------------------

    def node_state(self, node: str) -> NodeState:
        row = self._db.execute(
            "SELECT last_seq, last_hash, last_batch_hash, last_event_time FROM nodes WHERE node=?",
            (node,),
        ).fetchone()
        return NodeState(node, *row) if row else NodeState(node)

    def nodes(self) -> list[NodeState]:
        rows = self._db.execute(
            "SELECT node, last_seq, last_hash, last_batch_hash, last_event_time FROM nodes "
            "ORDER BY node"
        ).fetchall()
        return [NodeState(*row) for row in rows]

    def batch_at(self, node: str, first_seq: int) -> StoredBatch | None:
        row = self._db.execute(
            "SELECT node, first_seq, last_seq, hash, header, signature, received_at FROM batches "
            "WHERE node=? AND first_seq=?",
            (node, first_seq),
        ).fetchone()
        return StoredBatch(*row) if row else None

    def store_batch(self, batch: ShippedBatch, header_hash: str, received_at: str) -> NodeState:
        h = batch.header
        with self._tx():
            state = self.node_state(h.node)
            if state.last_seq != h.first_seq - 1 or state.last_hash != h.prev_event_hash:
                raise StaleState(f"node {h.node} moved to seq {state.last_seq}")
            idx = self._leaves
            rows, leaf_rows = batch_rows(batch, idx)
            self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", rows)
            self._db.executemany("INSERT INTO leaves VALUES (?, ?)", leaf_rows)
            self._db.execute(
                "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?)",
                batch_row(batch, header_hash, received_at),
            )
            new = state_after(batch, header_hash)
            self._db.execute(
                "INSERT INTO nodes (node, last_seq, last_hash, last_batch_hash, last_event_time) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(node) DO UPDATE SET "
                "last_seq=excluded.last_seq, last_hash=excluded.last_hash, "
                "last_batch_hash=excluded.last_batch_hash, "
                "last_event_time=excluded.last_event_time",
                (new.node, new.last_seq, new.last_hash, new.last_batch_hash, new.last_event_time),
            )
        self._leaves = idx + len(rows)
        return new

    def record_heartbeat(self, node: str, body: str, at: str) -> None:
        with self._tx():
            self._db.execute(
                "INSERT INTO nodes (node, last_seq, last_hash, last_batch_hash, heartbeat, "
                "heartbeat_at) VALUES (?, 0, ?, ?, ?, ?) ON CONFLICT(node) DO UPDATE SET "
                "heartbeat=excluded.heartbeat, heartbeat_at=excluded.heartbeat_at",
                (node, GENESIS_HASH, GENESIS_BATCH_HASH, body, at),
            )

    def heartbeat(self, node: str) -> tuple[str, str] | None:
        row = self._db.execute(
            "SELECT heartbeat, heartbeat_at FROM nodes WHERE node=? AND heartbeat IS NOT NULL",
            (node,),
        ).fetchone()
        return (row[0], row[1]) if row else None

    # -- documents and the global log ------------------------------------------------------

    def add_document(self, digest: str, name: str | None, at: str) -> tuple[int, dict[str, Any]]:
        with self._tx():
            row = self._db.execute(
                "SELECT leaf, name, registered_at FROM documents WHERE digest=?", (digest,)
            ).fetchone()
            if row is None:
                idx = self._leaves
                self._db.execute(
                    "INSERT INTO documents VALUES (?, ?, ?, ?)", (digest, name, at, idx)
                )
                self._db.execute(
                    "INSERT INTO leaves VALUES (?, ?)", (idx, document_leaf_hash(digest, name, at))
                )
                row = (idx, name, at)
        if row[0] == self._leaves:
            self._leaves += 1
        return int(row[0]), document_entry(row[1], row[2], digest)

    def leaf_count(self) -> int:
        return self._leaves

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        rows = self._db.execute(
            "SELECT hash FROM leaves WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end)
        ).fetchall()
        return [bytes(r[0]) for r in rows]

    def event_leaf_index(self, node: str, seq: int) -> int | None:
        row = self._db.execute(
            "SELECT leaf FROM events WHERE node=? AND seq=?", (node, seq)
        ).fetchone()
        return int(row[0]) if row else None

    def save_checkpoint(self, cp: StoredCheckpoint) -> None:
        with self._tx():
            self._db.execute(
                "INSERT OR IGNORE INTO checkpoints VALUES (?, ?, ?, ?)",
                (cp.size, cp.root, cp.note, cp.created),
            )

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        row = self._db.execute(
            "SELECT size, root, note, created FROM checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        return StoredCheckpoint(row[0], bytes(row[1]), row[2], row[3]) if row else None

    # -- for `audit verify` and `audit tail|query` -----------------------------------------

    def iter_batches(self, node: str) -> Iterator[StoredBatch]:
        cur = self._db.execute(
            "SELECT node, first_seq, last_seq, hash, header, signature, received_at FROM batches "
            "WHERE node=? ORDER BY first_seq",
            (node,),
        )
        for row in cur:
            yield StoredBatch(*row)

    def event_bodies(self, node: str, first: int, last: int) -> list[tuple[int, str, int]]:
        rows = self._db.execute(
            "SELECT seq, body, leaf FROM events WHERE node=? AND seq BETWEEN ? AND ? ORDER BY seq",
            (node, first, last),
        ).fetchall()
        return [(int(a), str(b), int(c)) for a, b, c in rows]

    def iter_leaves(self) -> Iterator[tuple[int, bytes, bytes]]:
        """(index, stored leaf hash, leaf data recomputed from the stored entry)."""

        for row in self._db.execute(LEAVES_JOIN + " ORDER BY l.idx"):
            yield leaf_entry(*row)


def is_database_url(location: str | os.PathLike[str]) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def open_storage(location: str | os.PathLike[str]) -> CollectorStorage:
    """A ``postgresql://`` URL (libpq syntax) opens PostgreSQL; anything else is a SQLite file."""
    if is_database_url(location):
        from trustspace_operator.collector.pgstorage import PostgresStorage

        return PostgresStorage(str(location))
    return SqliteStorage(location)
