"""PostgreSQL storage for the collector (``databaseUrl``), with the same semantics as SQLite.

* A batch is stored in one transaction; the collector acknowledges it only after
  ``COMMIT`` returns (``synchronous_commit`` as the server has it: ``on`` by default, which
  waits for the WAL flush). An ack therefore always means "durable".
* Exactly once: the node row is locked (``FOR UPDATE``) and its head re-checked inside the
  transaction; primary keys on ``(node, seq)``, ``(node, first_seq)`` and the leaf index
  refuse a second copy even if two collectors ever wrote at once.
* The global leaf log is appended under a transaction-scoped advisory lock, so leaf indexes
  stay dense and ordered across writers.

A broken connection (server restart) is replaced on the next call; the failed call raises,
so the agent retries the batch and gets a duplicate ack if it had in fact committed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import psycopg

from trustspace_operator.collector.storage.sql import SCHEMA, SqlStorage

# Serialises appends to the global leaf log (any 64-bit constant unique to this use).
_LEAF_LOCK = 0x7472757374737063
# COPY is PostgreSQL's bulk insert: one round trip for all the rows of a batch.
_COPY = {
    "events": "COPY events (node, seq, leaf, body) FROM STDIN",
    "leaves": "COPY leaves (idx, hash) FROM STDIN",
}


class PostgresStorage(SqlStorage):
    placeholder = "%s"

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._db = self._connect()
        with self._db.transaction():
            # Two collectors starting at once must not race on CREATE TABLE.
            self._lock_leaves()
            self._db.execute(SCHEMA.format(int="BIGINT", blob="BYTEA"))

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, autocommit=True, application_name="trustspace-collector")

    def _connection(self) -> psycopg.Connection[Any]:
        if self._db.closed or self._db.broken:
            self._db = self._connect()
        return self._db

    def _write(self) -> contextlib.AbstractContextManager[None]:
        return self._connection().transaction()  # type: ignore[return-value]

    def _lock_leaves(self) -> None:
        self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_LEAF_LOCK,))

    def _lock_node(self, sql: str) -> str:
        return sql + " FOR UPDATE"

    def _insert_many(self, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        with self._db.cursor() as cur, cur.copy(_COPY[table]) as copy:
            for row in rows:
                copy.write_row(row)

    def close(self) -> None:
        self._db.close()
