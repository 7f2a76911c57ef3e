"""What a destination gateway received: decrypted payload plus the evidence that it came,
signed, from the source (the SM2 request signature and what it covered).

``synchronous=NORMAL`` in WAL mode: a received transfer survives a crash of the agent (the
WAL is in the OS), and the ``transfer.received`` audit event, which is fsynced, records its
digest either way. Full fsync per received transfer would halve the gateway's throughput.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from trustspace.crypto import sm3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (id TEXT PRIMARY KEY, received REAL NOT NULL,
  source TEXT NOT NULL, link TEXT NOT NULL, core TEXT NOT NULL, approvals TEXT NOT NULL,
  evidence TEXT NOT NULL, payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS manifests (digest TEXT PRIMARY KEY, body BLOB NOT NULL);
"""


class Inbox:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add_many(
        self,
        items: list[tuple[dict[str, Any], bytes, list[dict[str, Any]], dict[str, Any], bytes]],
        manifest: bytes | None = None,
    ) -> list[bool]:
        """Store (core, its canonical bytes, approvals, evidence, payload) items in one
        transaction, with the signed batch manifest their evidence refers to; per item,
        False for a retry."""
        now = time.time()
        fresh = []
        self._db.execute("BEGIN")
        try:
            if manifest is not None:
                self._db.execute(
                    "INSERT OR IGNORE INTO manifests VALUES (?, ?)", (sm3(manifest).hex(), manifest)
                )
            for core, core_bytes, approvals, evidence, payload in items:
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO inbox VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        core["id"],
                        now,
                        core["source"],
                        core["link"],
                        core_bytes.decode(),
                        json.dumps(approvals),
                        json.dumps(evidence),
                        payload,
                    ),
                )
                fresh.append(cur.rowcount == 1)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return fresh

    def manifest(self, digest: str) -> bytes | None:
        """The signed manifest of a batch (evidence of every transfer that came in it)."""
        row = self._db.execute("SELECT body FROM manifests WHERE digest = ?", (digest,)).fetchone()
        return None if row is None else bytes(row[0])

    def get(self, tid: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT id, received, core, approvals, evidence, payload FROM inbox WHERE id = ?",
            (tid,),
        ).fetchone()
        if row is None:
            return None
        core = json.loads(row[2])
        payload: Any
        if core.get("payloadKind") == "records":
            payload = {"records": json.loads(row[5])}
        else:
            import base64

            payload = {"payloadBase64": base64.b64encode(row[5]).decode()}
        return {
            "id": row[0],
            "receivedAt": row[1],
            "metadata": core,
            "approvals": json.loads(row[3]),
            "evidence": json.loads(row[4]),
            **payload,
        }

    def list_ids(self, limit: int = 1000) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT id, source, link, received FROM inbox ORDER BY received DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [{"id": r[0], "source": r[1], "link": r[2], "receivedAt": r[3]} for r in rows]

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM inbox").fetchone()[0])
