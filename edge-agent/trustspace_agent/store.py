"""The agent's durable audit log: one SQLite file in WAL mode with ``synchronous=FULL``.

Why SQLite rather than segment files (the Fluent Bit / Kafka style):

* **Crash safety.** A transaction is durable once ``COMMIT`` returns: with WAL and
  ``synchronous=FULL`` the WAL is fsynced at every commit, so neither SIGKILL nor power loss
  can lose an acknowledged append or leave half of one. Segment files need their own
  length-prefix/CRC framing, torn-write recovery and directory fsyncs to get the same.
* **Atomic batches.** Assigning ``seq`` and ``prev`` and inserting the event happen in one
  transaction, so the chain cannot fork or skip even with concurrent callers or a crash in
  between. Sealing a signed batch and advancing the sealed mark is likewise one transaction.
* **Simple ack bookkeeping.** The hub's acknowledged sequence is a row; compaction is a
  ``DELETE`` of rows at or below it, and SQLite reuses the freed pages. Segment stores can
  only drop whole segments and need a separate offset file that must agree with them.
* **Single file**, readable with the ``sqlite3`` tool when an operator has to look.

WAL (rather than a rollback journal) lets the shipper read batches while appends commit, and
costs one sequential fsync per commit.

Quota: when the live pages of the file reach ``max_bytes`` the store **fails closed**:
:meth:`AuditStore.append` raises :class:`AuditBackpressure` and nothing is ever dropped (Fluent
Bit drops the oldest chunk; an audit trail must not). Space comes back only when the hub has
acknowledged events as durable and :meth:`AuditStore.ack` compacts them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from trustspace import clock
from trustspace.audit import wire
from trustspace.audit.batch import GENESIS_BATCH_HASH, Batch, seal_bodies
from trustspace.audit.event import GENESIS_HASH, Event, EventFields
from trustspace.crypto import SM2PrivateKey, sm3


class AuditBackpressure(RuntimeError):
    """The audit store is full: no operation may proceed until the hub acknowledges events."""


class StoreCorrupt(RuntimeError):
    """The store's bookkeeping contradicts itself; the agent must not guess."""


# Not frozen: a frozen dataclass costs about 1 µs more to build, once per event here.
@dataclass(slots=True)
class Appended:
    """An appended event as the store wrote it: seq, chain link and canonical encoding."""

    seq: int
    prev: str
    digest: str
    """Hex SM3 of ``body``: the next event's ``prev``."""
    body: bytes

    def hash(self) -> str:
        return self.digest

    def event(self) -> Event:
        return Event.model_validate_json(self.body)


@dataclass(frozen=True)
class SealedBatch:
    """A batch as stored: its header and signature, events referenced by range."""

    first_seq: int
    last_seq: int
    header_json: str
    signature_b64: str
    hash: str


_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, body TEXT NOT NULL,
                                   hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL,
                                    header TEXT NOT NULL, signature TEXT NOT NULL,
                                    hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""
_DEFAULTS = {
    "last_seq": "0",
    "last_hash": GENESIS_HASH,
    "sealed_seq": "0",
    "last_batch_hash": GENESIS_BATCH_HASH,
    "acked_seq": "0",
}


class AuditStore:
    """Not thread-safe: the agent drives it from one dedicated thread."""

    def __init__(self, path: str | os.PathLike[str], node: str, max_bytes: int) -> None:
        self.path = Path(path)
        self.node = node
        self.max_bytes = max_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        with self._tx():
            stored = dict(self._db.execute("SELECT k, v FROM meta").fetchall())
            if "node" in stored and stored["node"] != node:
                raise StoreCorrupt(f"store {self.path} belongs to node {stored['node']!r}")
            for k, v in {"node": node, **_DEFAULTS}.items():
                if k not in stored:
                    self._db.execute("INSERT INTO meta VALUES (?, ?)", (k, v))
        meta = self._meta()
        self.last_seq = int(meta["last_seq"])
        self.last_hash = meta["last_hash"]
        self.sealed_seq = int(meta["sealed_seq"])
        self.last_batch_hash = meta["last_batch_hash"]
        self.acked_seq = int(meta["acked_seq"])
        self._page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    # -- helpers ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _meta(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT k, v FROM meta").fetchall())

    def _set(self, **values: object) -> None:
        self._db.executemany(
            "UPDATE meta SET v = ? WHERE k = ?", [(str(v), k) for k, v in values.items()]
        )

    def used_bytes(self) -> int:
        pages = int(self._db.execute("PRAGMA page_count").fetchone()[0])
        free = int(self._db.execute("PRAGMA freelist_count").fetchone()[0])
        return (pages - free) * self._page_size

    @property
    def backpressure(self) -> bool:
        return self.used_bytes() >= self.max_bytes

    # -- append ----------------------------------------------------------------------------

    def append(self, fields: EventFields) -> Appended:
        return self.append_many([fields])[0]

    def append_many(self, many: Sequence[EventFields]) -> list[Appended]:
        """Chain and store events atomically: all of them, or (on any error) none."""
        if self.used_bytes() >= self.max_bytes:
            raise AuditBackpressure(
                f"audit store full ({self.used_bytes()} of {self.max_bytes} bytes) "
                f"until the hub acknowledges seq {self.acked_seq + 1}..{self.last_seq}; "
                "refusing new operations rather than dropping audit events"
            )
        seq, prev = self.last_seq, self.last_hash
        # One time for the events of one commit: they become durable together.
        now = clock.rfc3339_micro()
        dicts: list[dict[str, Any]] = []
        out: list[Appended] = []
        for fields in many:
            seq += 1
            d = fields.model_dump(by_alias=True, exclude_none=True)
            d.update(node=self.node, seq=seq, time=now, prev=prev)
            body = wire.encode(d)
            digest = sm3(body).hex()
            dicts.append(d)
            out.append(Appended(seq, prev, digest, body))
            prev = digest
        # The same constraints as the Event model, in one call; and it proves the bytes
        # above are the canonical encoding (see trustspace.audit.wire).
        wire.EVENT_LIST.validate_python(dicts)
        try:
            with self._tx():
                self._db.executemany(
                    "INSERT INTO events VALUES (?, ?, ?)",
                    [(a.seq, a.body.decode(), a.digest) for a in out],
                )
                self._set(last_seq=seq, last_hash=prev)
        except sqlite3.OperationalError as exc:
            if "full" in str(exc):
                raise AuditBackpressure(f"disk full while appending audit events: {exc}") from None
            raise
        self.last_seq, self.last_hash = seq, prev
        return out

    # -- sealing ---------------------------------------------------------------------------

    def unsealed(self) -> int:
        return self.last_seq - self.sealed_seq

    def seal(self, key: SM2PrivateKey, max_events: int, max_batches: int = 1) -> int:
        """Sign up to ``max_batches`` batches of up to ``max_events`` unsealed events each,
        in one transaction (one fsync however many); return the number of events sealed.

        Straight from the stored canonical bytes: the events were validated at append.
        """
        rows = self._db.execute(
            "SELECT seq, body, hash FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            (self.sealed_seq, max_events * max_batches),
        ).fetchall()
        if not rows:
            return 0
        first_seq, last_seq = rows[0][0], rows[-1][0]
        first = orjson.loads(rows[0][1])
        if (
            first_seq != self.sealed_seq + 1
            or last_seq - first_seq + 1 != len(rows)
            or first.get("seq") != first_seq
            or first.get("node") != self.node
        ):
            raise StoreCorrupt(
                f"unsealed events {first_seq}..{last_seq} ({len(rows)} rows) do not follow "
                f"sealed seq {self.sealed_seq}"
            )
        prev_event, prev_batch = first["prev"], self.last_batch_hash
        sealed = []
        for start in range(0, len(rows), max_events):
            chunk = rows[start : start + max_events]
            header, signature = seal_bodies(
                self.node,
                chunk[0][0],
                prev_event,
                [body.encode() for _, body, _ in chunk],
                prev_batch,
                key,
            )
            header_json = json.dumps(header.to_dict(), separators=(",", ":"), sort_keys=True)
            prev_event, prev_batch = chunk[-1][2], header.hash()
            sealed.append(
                (
                    header.first_seq,
                    header.last_seq,
                    header_json,
                    base64.b64encode(signature).decode(),
                    prev_batch,
                )
            )
        with self._tx():
            self._db.executemany("INSERT INTO batches VALUES (?, ?, ?, ?, ?)", sealed)
            self._set(sealed_seq=last_seq, last_batch_hash=prev_batch)
        self.sealed_seq, self.last_batch_hash = last_seq, prev_batch
        return len(rows)

    # -- shipping --------------------------------------------------------------------------

    def batches_after(self, seq: int, limit: int) -> list[SealedBatch]:
        rows = self._db.execute(
            "SELECT first_seq, last_seq, header, signature, hash FROM batches "
            "WHERE last_seq > ? ORDER BY first_seq LIMIT ?",
            (seq, limit),
        ).fetchall()
        return [SealedBatch(*row) for row in rows]

    def wire_body(self, batch: SealedBatch) -> bytes:
        """The JSON request body for ``batch``, assembled from stored canonical text."""
        bodies = self._db.execute(
            "SELECT body FROM events WHERE seq BETWEEN ? AND ? ORDER BY seq",
            (batch.first_seq, batch.last_seq),
        ).fetchall()
        if len(bodies) != batch.last_seq - batch.first_seq + 1:
            raise StoreCorrupt(f"events of batch {batch.first_seq}..{batch.last_seq} missing")
        events = ",".join(b for (b,) in bodies)
        return (
            f'{{"header":{batch.header_json},"signature":"{batch.signature_b64}",'
            f'"events":[{events}]}}'
        ).encode()

    def batch(self, batch: SealedBatch) -> Batch:
        return Batch.from_wire(json.loads(self.wire_body(batch)))

    # -- acknowledgement -------------------------------------------------------------------

    def ack(self, seq: int) -> None:
        """The hub holds everything up to ``seq`` durably: compact it away."""
        if seq <= self.acked_seq:
            return
        if seq > self.sealed_seq:
            raise StoreCorrupt(f"hub acknowledged seq {seq} beyond sealed seq {self.sealed_seq}")
        with self._tx():
            self._db.execute("DELETE FROM events WHERE seq <= ?", (seq,))
            self._db.execute("DELETE FROM batches WHERE last_seq <= ?", (seq,))
            self._set(acked_seq=seq)
        self.acked_seq = seq
