"""SQLite storage for the collector (the default): one file, WAL with ``synchronous=FULL``;
a batch is acknowledged only after its transaction commits, so an ack always means "durable".
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from trustspace_operator.collector.storage.sql import SCHEMA, SqlStorage


class SqliteStorage(SqlStorage):
    placeholder = "?"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA.format(int="INTEGER", blob="BLOB"))

    def _connection(self) -> sqlite3.Connection:
        return self._db

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        # IMMEDIATE takes the database's write lock now: the head read and the leaf count
        # inside the transaction cannot be moved by another writer before the commit.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()
