from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.audit_harness import Harness
from support.postgres import postgres_server  # noqa: F401


@pytest.fixture
def harness(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Harness]:
    """Parametrize with ``indirect=True`` and ``"postgres"`` for a PostgreSQL collector."""
    backend = getattr(request, "param", "sqlite")
    url = None
    if backend == "postgres":
        server = request.getfixturevalue("postgres_server")
        url = server.url(server.create_database())
    h = Harness(tmp_path, database_url=url)
    try:
        yield h
    finally:
        h.close()
