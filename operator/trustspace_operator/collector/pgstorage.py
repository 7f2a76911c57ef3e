"""PostgreSQL storage for the collector: the :class:`CollectorStorage` interface of
:mod:`.storage`, with the same semantics as SQLite.

* A batch is stored in one transaction; the collector acknowledges it only after
  ``COMMIT`` returns (``synchronous_commit`` as the server has it: ``on`` by default, which
  waits for the WAL flush). An ack therefore always means "durable".
* Exactly once: the node row is locked (``FOR UPDATE``) and its head re-checked inside the
  transaction; primary keys on ``(node, seq)``, ``(node, first_seq)`` and the leaf index
  refuse a second copy even if two collectors ever wrote at once.
* The global leaf log is appended under a transaction-scoped advisory lock, so leaf indexes
  stay dense and ordered across writers.

Like :class:`.storage.SqliteStorage` it is called from one thread (:mod:`.dbthread`). A
broken connection (server restart) is replaced on the next call; the failed call raises, so
the agent retries the batch and gets a duplicate ack if it had in fact committed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg

from trustspace.audit.batch import GENESIS_BATCH_HASH, ShippedBatch
from trustspace.audit.event import GENESIS_HASH
from trustspace_operator.collector.storage import (
    LEAVES_JOIN,
    SCHEMA,
    NodeState,
    StaleState,
    StoredBatch,
    StoredCheckpoint,
    batch_row,
    batch_rows,
    document_entry,
    document_leaf_hash,
    leaf_entry,
    state_after,
)

# Serialises appends to the global leaf log (any 64-bit constant unique to this use).
_LEAF_LOCK = 0x7472757374737063
_PAGE = 10_000
_NODE = "SELECT last_seq, last_hash, last_batch_hash, last_event_time FROM nodes WHERE node=%s"
_NODE_FOR_UPDATE = _NODE + " FOR UPDATE"


class PostgresStorage:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._db = self._connect()
        with self._db.transaction():
            # Two collectors starting at once must not race on CREATE TABLE.
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_LEAF_LOCK,))
            self._db.execute(SCHEMA.format(int="BIGINT", blob="BYTEA"))
        self._leaves = self._next_leaf()

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, autocommit=True, application_name="trustspace-collector")

    @property
    def _conn(self) -> psycopg.Connection[Any]:
        if self._db.closed or self._db.broken:
            self._db = self._connect()
            self._leaves = self._next_leaf()
        return self._db

    def _next_leaf(self) -> int:
        row = self._db.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM leaves").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._db.close()

    # -- nodes -----------------------------------------------------------------------------

    def node_state(self, node: str) -> NodeState:
        return self._node_state(node, lock=False)

    def _node_state(self, node: str, *, lock: bool) -> NodeState:
        row = self._conn.execute(_NODE_FOR_UPDATE if lock else _NODE, (node,)).fetchone()
        return NodeState(node, int(row[0]), row[1], row[2], row[3]) if row else NodeState(node)

    def nodes(self) -> list[NodeState]:
        rows = self._conn.execute(
            "SELECT node, last_seq, last_hash, last_batch_hash, last_event_time FROM nodes "
            "ORDER BY node"
        ).fetchall()
        return [NodeState(r[0], int(r[1]), r[2], r[3], r[4]) for r in rows]

    def batch_at(self, node: str, first_seq: int) -> StoredBatch | None:
        row = self._conn.execute(
            "SELECT node, first_seq, last_seq, hash, header, signature, received_at FROM batches "
            "WHERE node=%s AND first_seq=%s",
            (node, first_seq),
        ).fetchone()
        return _batch(row) if row else None

    def store_batch(self, batch: ShippedBatch, header_hash: str, received_at: str) -> NodeState:
        h = batch.header
        db = self._conn
        with db.transaction():
            # The node row (if any) and then the leaf log; always in this order.
            state = self._node_state(h.node, lock=True)
            if state.last_seq != h.first_seq - 1 or state.last_hash != h.prev_event_hash:
                raise StaleState(f"node {h.node} moved to seq {state.last_seq}")
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_LEAF_LOCK,))
            idx = self._next_leaf()
            rows, leaf_rows = batch_rows(batch, idx)
            with db.cursor() as cur:
                with cur.copy("COPY events (node, seq, leaf, body) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                with cur.copy("COPY leaves (idx, hash) FROM STDIN") as copy:
                    for leaf in leaf_rows:
                        copy.write_row(leaf)
            db.execute(
                "INSERT INTO batches VALUES (%s, %s, %s, %s, %s, %s, %s)",
                batch_row(batch, header_hash, received_at),
            )
            new = state_after(batch, header_hash)
            db.execute(
                "INSERT INTO nodes (node, last_seq, last_hash, last_batch_hash, last_event_time) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (node) DO UPDATE SET "
                "last_seq=excluded.last_seq, last_hash=excluded.last_hash, "
                "last_batch_hash=excluded.last_batch_hash, "
                "last_event_time=excluded.last_event_time",
                (new.node, new.last_seq, new.last_hash, new.last_batch_hash, new.last_event_time),
            )
        # Committed: only now does the caller acknowledge.
        self._leaves = idx + len(rows)
        return new

    def record_heartbeat(self, node: str, body: str, at: str) -> None:
        self._conn.execute(
            "INSERT INTO nodes (node, last_seq, last_hash, last_batch_hash, heartbeat, "
            "heartbeat_at) VALUES (%s, 0, %s, %s, %s, %s) ON CONFLICT (node) DO UPDATE SET "
            "heartbeat=excluded.heartbeat, heartbeat_at=excluded.heartbeat_at",
            (node, GENESIS_HASH, GENESIS_BATCH_HASH, body, at),
        )

    def heartbeat(self, node: str) -> tuple[str, str] | None:
        row = self._conn.execute(
            "SELECT heartbeat, heartbeat_at FROM nodes WHERE node=%s AND heartbeat IS NOT NULL",
            (node,),
        ).fetchone()
        return (row[0], row[1]) if row else None

    # -- documents and the global log ------------------------------------------------------

    def add_document(self, digest: str, name: str | None, at: str) -> tuple[int, dict[str, Any]]:
        db = self._conn
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_LEAF_LOCK,))
            row = db.execute(
                "SELECT leaf, name, registered_at FROM documents WHERE digest=%s", (digest,)
            ).fetchone()
            if row is None:
                idx = self._next_leaf()
                db.execute("INSERT INTO documents VALUES (%s, %s, %s, %s)", (digest, name, at, idx))
                db.execute(
                    "INSERT INTO leaves VALUES (%s, %s)",
                    (idx, document_leaf_hash(digest, name, at)),
                )
                row = (idx, name, at)
        self._leaves = max(self._leaves, int(row[0]) + 1)
        return int(row[0]), document_entry(row[1], row[2], digest)

    def leaf_count(self) -> int:
        return self._leaves

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        rows = self._conn.execute(
            "SELECT hash FROM leaves WHERE idx >= %s AND idx < %s ORDER BY idx", (start, end)
        ).fetchall()
        return [bytes(r[0]) for r in rows]

    def event_leaf_index(self, node: str, seq: int) -> int | None:
        row = self._conn.execute(
            "SELECT leaf FROM events WHERE node=%s AND seq=%s", (node, seq)
        ).fetchone()
        return int(row[0]) if row else None

    def save_checkpoint(self, cp: StoredCheckpoint) -> None:
        self._conn.execute(
            "INSERT INTO checkpoints VALUES (%s, %s, %s, %s) ON CONFLICT (size) DO NOTHING",
            (cp.size, cp.root, cp.note, cp.created),
        )

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        row = self._conn.execute(
            "SELECT size, root, note, created FROM checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        return StoredCheckpoint(int(row[0]), bytes(row[1]), row[2], row[3]) if row else None

    # -- for `audit verify` and `audit tail|query` (pages keep memory bounded) ---------------

    def iter_batches(self, node: str) -> Iterator[StoredBatch]:
        after = 0
        while True:
            rows = self._conn.execute(
                "SELECT node, first_seq, last_seq, hash, header, signature, received_at "
                "FROM batches WHERE node=%s AND first_seq > %s ORDER BY first_seq LIMIT %s",
                (node, after, _PAGE),
            ).fetchall()
            for row in rows:
                yield _batch(row)
            if len(rows) < _PAGE:
                return
            after = int(rows[-1][1])

    def event_bodies(self, node: str, first: int, last: int) -> list[tuple[int, str, int]]:
        rows = self._conn.execute(
            "SELECT seq, body, leaf FROM events WHERE node=%s AND seq BETWEEN %s AND %s "
            "ORDER BY seq",
            (node, first, last),
        ).fetchall()
        return [(int(a), str(b), int(c)) for a, b, c in rows]

    def iter_leaves(self) -> Iterator[tuple[int, bytes, bytes]]:
        """(index, stored leaf hash, leaf data recomputed from the stored entry)."""
        after = -1
        while True:
            rows = self._conn.execute(
                LEAVES_JOIN + " WHERE l.idx > %s ORDER BY l.idx LIMIT %s", (after, _PAGE)
            ).fetchall()
            for row in rows:
                yield leaf_entry(*row)
            if len(rows) < _PAGE:
                return
            after = int(rows[-1][0])


def _batch(row: Any) -> StoredBatch:
    return StoredBatch(row[0], int(row[1]), int(row[2]), row[3], row[4], row[5], row[6])
