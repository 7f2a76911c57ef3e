"""The collector's storage in SQL, once for both backends: the schema, every query and the
rules (exactly once, a dense leaf log, idempotent documents).

A backend (:mod:`.sqlite`, :mod:`.postgres`) supplies only what differs: the connection,
how a write transaction starts and what it locks, the bulk insert, and the placeholder
style. Queries here are written with ``?`` placeholders; a backend using another style
rewrites them once (:meth:`SqlStorage._sql`).

The leaf log is counted in the database, never in a copy kept in memory: another writer on
the same database (a second collector, a restart that overlaps the old process) moves it,
and a stale copy would hand out a leaf index that is already taken.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any

from trustspace.audit import merkle
from trustspace.audit.batch import GENESIS_BATCH_HASH, ShippedBatch
from trustspace.audit.event import GENESIS_HASH
from trustspace.audit.receipt import document_leaf, event_leaf, event_leaf_from_canonical
from trustspace_operator.collector.storage.records import (
    NodeState,
    StaleState,
    StoredBatch,
    StoredCheckpoint,
)

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

#: Rows per page when reading the whole record (``audit verify``): memory stays bounded.
PAGE = 10_000

_NODE = "SELECT node, last_seq, last_hash, last_batch_hash, last_event_time FROM nodes WHERE node=?"
_NODES = (
    "SELECT node, last_seq, last_hash, last_batch_hash, last_event_time FROM nodes ORDER BY node"
)
_BATCH = (
    "SELECT node, first_seq, last_seq, hash, header, signature, received_at FROM batches "
    "WHERE node=? AND first_seq=?"
)
_BATCHES_AFTER = (
    "SELECT node, first_seq, last_seq, hash, header, signature, received_at FROM batches "
    "WHERE node=? AND first_seq > ? ORDER BY first_seq LIMIT ?"
)
#: The bulk inserts of a batch, by table (a backend may have a faster way: COPY).
INSERTS = {
    "events": "INSERT INTO events (node, seq, leaf, body) VALUES (?, ?, ?, ?)",
    "leaves": "INSERT INTO leaves (idx, hash) VALUES (?, ?)",
}
_NEXT_LEAF = "SELECT COALESCE(MAX(idx) + 1, 0) FROM leaves"
_LEAVES_JOIN = (
    "SELECT l.idx, l.hash, e.body, d.digest, d.name, d.registered_at FROM leaves l "
    "LEFT JOIN events e ON e.leaf = l.idx LEFT JOIN documents d ON d.leaf = l.idx"
)
_SET_HEAD = (
    "INSERT INTO nodes (node, last_seq, last_hash, last_batch_hash, last_event_time) "
    "VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (node) DO UPDATE SET "
    "last_seq=excluded.last_seq, last_hash=excluded.last_hash, "
    "last_batch_hash=excluded.last_batch_hash, last_event_time=excluded.last_event_time"
)
_SET_HEARTBEAT = (
    "INSERT INTO nodes (node, last_seq, last_hash, last_batch_hash, heartbeat, heartbeat_at) "
    "VALUES (?, 0, ?, ?, ?, ?) ON CONFLICT (node) DO UPDATE SET "
    "heartbeat=excluded.heartbeat, heartbeat_at=excluded.heartbeat_at"
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


def document_entry(name: str | None, registered_at: str, digest: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"digest": digest, "registeredAt": registered_at}
    if name:
        entry["name"] = name
    return entry


def leaf_entry(
    idx: int, stored: bytes, body: str | None, digest: str | None, name: str | None, at: str | None
) -> tuple[int, bytes, bytes]:
    """A row of the leaves join as (index, stored hash, leaf data recomputed from the event
    or document the leaf stands for; empty if it stands for neither)."""
    if body is not None:
        data = event_leaf(json.loads(body))
    elif digest is not None and at is not None:
        data = document_leaf(digest, at, name)
    else:
        data = b""
    return int(idx), bytes(stored), data


def _node(row: Sequence[Any]) -> NodeState:
    return NodeState(row[0], int(row[1]), row[2], row[3], row[4])


def _batch(row: Sequence[Any]) -> StoredBatch:
    return StoredBatch(row[0], int(row[1]), int(row[2]), row[3], row[4], row[5], row[6])


@cache
def _percent(sql: str) -> str:
    return sql.replace("?", "%s")


class SqlStorage:
    """:class:`.CollectorStorage` over a DB-API connection (``execute`` returning a cursor).

    Not thread-safe: the collector calls it from one thread (:class:`trustspace.onethread.
    OneThread`)."""

    #: ``?`` (qmark) or ``%s`` (format): the placeholder style of the backend's driver.
    placeholder = "?"

    # -- what a backend supplies -------------------------------------------------------------

    def _connection(self) -> Any:
        """The open connection (a backend may reconnect here)."""
        raise NotImplementedError

    def _write(self) -> contextlib.AbstractContextManager[None]:
        """One write transaction: committed on success, rolled back on any exception."""
        raise NotImplementedError

    def _lock_leaves(self) -> None:
        """Within :meth:`_write`: keep other writers off the leaf log until commit."""

    def _lock_node(self, sql: str) -> str:
        """``sql``, reading a node's head, made to lock that row until commit."""
        return sql

    def _insert_many(self, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Rows into ``table``, one of :data:`INSERTS`."""
        self._connection().executemany(self._sql(INSERTS[table]), rows)

    def close(self) -> None:
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else _percent(sql)

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._connection().execute(self._sql(sql), params)

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._execute(sql, params).fetchone()

    def _next_leaf(self) -> int:
        row = self._one(_NEXT_LEAF)
        return int(row[0]) if row else 0

    # -- nodes -----------------------------------------------------------------------------

    def node_state(self, node: str) -> NodeState:
        row = self._one(_NODE, (node,))
        return _node(row) if row else NodeState(node)

    def nodes(self) -> list[NodeState]:
        rows = self._execute(_NODES).fetchall()
        return [_node(r) for r in rows]

    def batch_at(self, node: str, first_seq: int) -> StoredBatch | None:
        row = self._one(_BATCH, (node, first_seq))
        return _batch(row) if row else None

    def store_batch(self, batch: ShippedBatch, header_hash: str, received_at: str) -> NodeState:
        h = batch.header
        with self._write():
            # The node row (if any) and then the leaf log; always in this order.
            row = self._one(self._lock_node(_NODE), (h.node,))
            state = _node(row) if row else NodeState(h.node)
            if state.last_seq != h.first_seq - 1 or state.last_hash != h.prev_event_hash:
                raise StaleState(f"node {h.node} moved to seq {state.last_seq}")
            self._lock_leaves()
            rows, leaf_rows = batch_rows(batch, self._next_leaf())
            self._insert_many("events", rows)
            self._insert_many("leaves", leaf_rows)
            self._execute(
                "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?)",
                batch_row(batch, header_hash, received_at),
            )
            new = state_after(batch, header_hash)
            self._execute(
                _SET_HEAD,
                (new.node, new.last_seq, new.last_hash, new.last_batch_hash, new.last_event_time),
            )
        # Committed: only now does the caller acknowledge.
        return new

    def record_heartbeat(self, node: str, body: str, at: str) -> None:
        self._execute(_SET_HEARTBEAT, (node, GENESIS_HASH, GENESIS_BATCH_HASH, body, at))

    def heartbeat(self, node: str) -> tuple[str, str] | None:
        row = self._one(
            "SELECT heartbeat, heartbeat_at FROM nodes WHERE node=? AND heartbeat IS NOT NULL",
            (node,),
        )
        return (row[0], row[1]) if row else None

    # -- documents and the global log ------------------------------------------------------

    def add_document(self, digest: str, name: str | None, at: str) -> tuple[int, dict[str, Any]]:
        with self._write():
            self._lock_leaves()
            row = self._one(
                "SELECT leaf, name, registered_at FROM documents WHERE digest=?", (digest,)
            )
            if row is None:
                idx = self._next_leaf()
                self._execute("INSERT INTO documents VALUES (?, ?, ?, ?)", (digest, name, at, idx))
                leaf = merkle.leaf_hash(document_leaf(digest, at, name))
                self._execute("INSERT INTO leaves VALUES (?, ?)", (idx, leaf))
                row = (idx, name, at)
        return int(row[0]), document_entry(row[1], row[2], digest)

    def leaf_count(self) -> int:
        return self._next_leaf()

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        rows = self._execute(
            "SELECT hash FROM leaves WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end)
        ).fetchall()
        return [bytes(r[0]) for r in rows]

    def event_leaf_index(self, node: str, seq: int) -> int | None:
        row = self._one("SELECT leaf FROM events WHERE node=? AND seq=?", (node, seq))
        return int(row[0]) if row else None

    def save_checkpoint(self, cp: StoredCheckpoint) -> None:
        self._execute(
            "INSERT INTO checkpoints VALUES (?, ?, ?, ?) ON CONFLICT (size) DO NOTHING",
            (cp.size, cp.root, cp.note, cp.created),
        )

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        row = self._one(
            "SELECT size, root, note, created FROM checkpoints ORDER BY size DESC LIMIT 1"
        )
        return StoredCheckpoint(int(row[0]), bytes(row[1]), row[2], row[3]) if row else None

    # -- for `audit verify` and `audit tail|query` (pages keep memory bounded) ---------------

    def iter_batches(self, node: str) -> Iterator[StoredBatch]:
        after = 0
        while True:
            rows = self._execute(_BATCHES_AFTER, (node, after, PAGE)).fetchall()
            for row in rows:
                yield _batch(row)
            if len(rows) < PAGE:
                return
            after = int(rows[-1][1])

    def event_bodies(self, node: str, first: int, last: int) -> list[tuple[int, str, int]]:
        rows = self._execute(
            "SELECT seq, body, leaf FROM events WHERE node=? AND seq BETWEEN ? AND ? ORDER BY seq",
            (node, first, last),
        ).fetchall()
        return [(int(a), str(b), int(c)) for a, b, c in rows]

    def iter_leaves(self) -> Iterator[tuple[int, bytes, bytes]]:
        """(index, stored leaf hash, leaf data recomputed from the stored entry)."""
        after = -1
        while True:
            rows = self._execute(
                _LEAVES_JOIN + " WHERE l.idx > ? ORDER BY l.idx LIMIT ?", (after, PAGE)
            ).fetchall()
            for row in rows:
                yield leaf_entry(*row)
            if len(rows) < PAGE:
                return
            after = int(rows[-1][0])
