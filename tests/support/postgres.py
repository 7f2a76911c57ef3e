"""A real PostgreSQL server for tests, from the Debian packages (``apt-get install postgresql``).

One server per test session: ``initdb`` into a fresh temp dir and ``pg_ctl start`` on a free
loopback port, run as the unprivileged ``postgres`` user when the tests run as root (the
server refuses root). Each test gets its own database (:func:`postgres_url`); the server is
stopped and its directory removed at the end of the session, even on failure.

Use the fixtures by importing them into a ``conftest.py``::

    from support.postgres import postgres_server, postgres_url  # noqa: F401
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_RUN_AS = "postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_pg_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` with initdb and pg_ctl, or None."""
    root = Path("/usr/lib/postgresql")
    candidates = sorted(
        (p for p in root.glob("*/bin") if p.parent.name.isdigit()),
        key=lambda p: int(p.parent.name),
    )
    for path in reversed(candidates):
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    return None


class PostgresServer:
    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="trustspace-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = _RUN_AS
            pw = pwd.getpwnam(_RUN_AS)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.started = False

    def _run(self, *args: str, timeout: float = 120) -> None:
        result = subprocess.run(
            [*args],
            user=self.user,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}"
                f"{result.stderr}\n{log}"
            )

    def start(self) -> PostgresServer:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",  # loopback and the socket in our own 0700 dir only
            "--no-instructions",
            "-E",
            "UTF8",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.root} "
            # Durability stays as in production: fsync and synchronous_commit on.
            "-c fsync=on -c synchronous_commit=on -c max_connections=200 "
            "-c shared_buffers=64MB"
        )
        self.started = True
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None, template: str | None = None) -> str:
        import psycopg

        name = name or f"t_{secrets.token_hex(6)}"
        with psycopg.connect(self.url(), autocommit=True) as db:
            sql = f'CREATE DATABASE "{name}"'
            if template:
                sql += f' TEMPLATE "{template}"'
            db.execute(sql.encode())
        return name

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(Exception):
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.fail(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: "
            "apt-get install -y postgresql",
            pytrace=False,
        )
    server = PostgresServer(bin_dir)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's server."""
    return postgres_server.url(postgres_server.create_database())


def exec_sql(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> Any:
    """Run SQLite-style SQL (``?`` placeholders) on a sqlite3 or psycopg connection."""
    if type(conn).__module__.startswith("psycopg"):
        return conn.execute(sql.replace("?", "%s"), params)
    return conn.execute(sql, params)
