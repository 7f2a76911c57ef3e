"""The transfers held for review at the source (B5, B7), with their ciphertext, until they
are delivered, rejected or expire; the ciphertext is deleted when they leave ``Held``."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustspace import clock
from trustspace_agent.gateway.approvals import progress

HELD, DELIVERED, REJECTED, EXPIRED, FAILED = "Held", "Delivered", "Rejected", "Expired", "Failed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS held (id TEXT PRIMARY KEY, created REAL NOT NULL,
  expires REAL NOT NULL, state TEXT NOT NULL, meta TEXT NOT NULL, core BLOB,
  sealed BLOB, approvals TEXT NOT NULL, reason TEXT);
"""


@dataclass(frozen=True)
class HeldTransfer:
    id: str
    created: float
    expires: float
    state: str
    meta: dict[str, Any]
    core: bytes | None
    sealed: bytes | None
    approvals: list[dict[str, Any]]
    reason: str | None

    def view(self) -> dict[str, Any]:
        p = progress(self.meta["groups"], self.approvals)
        return {
            "id": self.id,
            "state": self.state,
            "createdAt": _iso(self.created),
            "expiresAt": _iso(self.expires),
            **{k: v for k, v in self.meta.items() if k != "groups"},
            "groups": p.summary,
            "approvals": self.approvals,
            **({"reason": self.reason} if self.reason else {}),
        }


def _iso(t: float) -> str:
    return clock.from_epoch(t)


class ReviewStore:
    """SQLite, ``synchronous=FULL``: a held transfer is durable before the caller hears 202.
    Not thread-safe; the gateway drives it from one thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add(
        self, tid: str, expires: float, meta: dict[str, Any], core: bytes, sealed: bytes
    ) -> None:
        self._db.execute(
            "INSERT INTO held VALUES (?, ?, ?, ?, ?, ?, ?, '[]', NULL)",
            (tid, time.time(), expires, HELD, json.dumps(meta), core, sealed),
        )

    def get(self, tid: str) -> HeldTransfer | None:
        row = self._db.execute("SELECT * FROM held WHERE id = ?", (tid,)).fetchone()
        return _row(row) if row else None

    def items(self, state: str | None = None) -> list[HeldTransfer]:
        if state:
            rows = self._db.execute("SELECT * FROM held WHERE state = ? ORDER BY created", (state,))
        else:
            rows = self._db.execute("SELECT * FROM held ORDER BY created")
        return [_row(r) for r in rows.fetchall()]

    def set_approvals(self, tid: str, approvals: list[dict[str, Any]]) -> None:
        self._db.execute("UPDATE held SET approvals = ? WHERE id = ?", (json.dumps(approvals), tid))

    def finish(self, tid: str, state: str, reason: str | None) -> None:
        """A final state; the ciphertext of a transfer that will never go is deleted."""
        if state == DELIVERED:
            self._db.execute(
                "UPDATE held SET state = ?, reason = ?, sealed = NULL WHERE id = ?",
                (state, reason, tid),
            )
        else:
            self._db.execute(
                "UPDATE held SET state = ?, reason = ?, sealed = NULL, core = NULL WHERE id = ?",
                (state, reason, tid),
            )

    def due(self, now: float) -> list[str]:
        rows = self._db.execute(
            "SELECT id FROM held WHERE state = ? AND expires <= ?", (HELD, now)
        ).fetchall()
        return [r[0] for r in rows]

    def count_held(self) -> dict[str, int]:
        rows = self._db.execute("SELECT meta FROM held WHERE state = ?", (HELD,)).fetchall()
        out: dict[str, int] = {}
        for (meta,) in rows:
            link = json.loads(meta)["link"]
            out[link] = out.get(link, 0) + 1
        return out


def _row(row: tuple[Any, ...]) -> HeldTransfer:
    return HeldTransfer(
        row[0],
        row[1],
        row[2],
        row[3],
        json.loads(row[4]),
        row[5],
        row[6],
        json.loads(row[7]),
        row[8],
    )
