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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (id TEXT PRIMARY KEY, received REAL NOT NULL,
  source TEXT NOT NULL, link TEXT NOT NULL, core TEXT NOT NULL, approvals TEXT NOT NULL,
  evidence TEXT NOT NULL, payload BLOB NOT NULL);
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

    def add(
        self,
        core: dict[str, Any],
        approvals: list[dict[str, Any]],
        evidence: dict[str, str],
        payload: bytes,
    ) -> bool:
        """False when this transfer id was received before (a retry): nothing is stored."""
        try:
            self._db.execute(
                "INSERT INTO inbox VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    core["id"],
                    time.time(),
                    core["source"],
                    core["link"],
                    json.dumps(core),
                    json.dumps(approvals),
                    json.dumps(evidence),
                    payload,
                ),
            )
        except sqlite3.IntegrityError:
            return False
        return True

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
