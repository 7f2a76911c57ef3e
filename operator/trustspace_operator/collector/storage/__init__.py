"""Where the collector keeps what it has verified: SQLite by default (:mod:`.sqlite`), or
PostgreSQL (:mod:`.postgres`, chosen by :func:`open_storage` from a ``postgresql://`` URL).
Both are :class:`.sql.SqlStorage`: one schema, one set of queries and rules.
"""

from __future__ import annotations

import os

from trustspace_operator.collector.storage.records import (
    CollectorStorage,
    NodeState,
    StaleState,
    StoredBatch,
    StoredCheckpoint,
)
from trustspace_operator.collector.storage.sqlite import SqliteStorage

__all__ = [
    "CollectorStorage",
    "NodeState",
    "SqliteStorage",
    "StaleState",
    "StoredBatch",
    "StoredCheckpoint",
    "is_database_url",
    "open_storage",
]


def is_database_url(location: str | os.PathLike[str]) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def open_storage(location: str | os.PathLike[str]) -> CollectorStorage:
    """A ``postgresql://`` URL (libpq syntax) opens PostgreSQL; anything else is a SQLite file."""
    if is_database_url(location):
        # psycopg is an optional dependency (the `postgres` extra): imported only when asked.
        from trustspace_operator.collector.storage.postgres import PostgresStorage

        return PostgresStorage(str(location))
    return SqliteStorage(location)
