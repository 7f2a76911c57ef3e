"""A batch: consecutive events of one node, shipped edge -> hub under one SM2 signature.

The header names the node, the sequence range, the hash of the event before the first one
(``prevEventHash``, so the header alone pins the batch into the node's chain), the hash of the
previous batch header (``prevBatchHash``), the id of the signing key and the SM3 Merkle root of
the events' canonical encodings. The signature covers the canonical header only; the root
binds the events to it. Batches are sealed once, stored at the edge and re-sent byte for byte,
so a retry is recognisable as a duplicate.

Wire form (JSON)::

    {"header": {...}, "signature": "<base64 DER>", "events": [{...}, ...]}
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trustspace import clock
from trustspace.audit import merkle
from trustspace.audit.canonical import canonical_json
from trustspace.audit.errors import AuditError
from trustspace.audit.event import GENESIS_HASH, Event, Hex32, Name, verify_chain
from trustspace.crypto import InvalidSignature, SM2PrivateKey, SM2PublicKey, sm3

MAX_BATCH_EVENTS = 10_000
GENESIS_BATCH_HASH = GENESIS_HASH


class BatchError(AuditError):
    """A batch that is malformed or does not verify."""


class BatchHeader(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    node: Name
    first_seq: int = Field(ge=1, alias="firstSeq")
    last_seq: int = Field(ge=1, alias="lastSeq")
    count: Annotated[int, Field(ge=1, le=MAX_BATCH_EVENTS)]
    prev_event_hash: Hex32 = Field(alias="prevEventHash")
    prev_batch_hash: Hex32 = Field(alias="prevBatchHash")
    key_id: Hex32 = Field(alias="keyId")
    merkle_root: Hex32 = Field(alias="merkleRoot")
    created: Annotated[str, Field(max_length=40)]

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)

    def canonical(self) -> bytes:
        return canonical_json(self.to_dict())

    def hash(self) -> str:
        return sm3(self.canonical()).hex()


def events_root(events: list[Event]) -> str:
    return merkle.root([e.canonical() for e in events]).hex()


class ShippedEvent(Protocol):
    """What the hub needs of a verified event: an :class:`Event`, or its canonical bytes."""

    @property
    def seq(self) -> int: ...
    @property
    def time(self) -> str: ...
    def canonical(self) -> bytes: ...
    def hash(self) -> str: ...


class ShippedBatch(Protocol):
    """A verified batch as storage takes it (:class:`Batch` or a ``wire.CheckedBatch``)."""

    @property
    def header(self) -> BatchHeader: ...
    @property
    def signature(self) -> bytes: ...
    @property
    def events(self) -> Sequence[ShippedEvent]: ...


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    header: BatchHeader
    signature: bytes
    events: list[Event]

    def to_wire(self) -> dict[str, Any]:
        return {
            "header": self.header.to_dict(),
            "signature": base64.b64encode(self.signature).decode(),
            "events": [e.to_dict() for e in self.events],
        }

    @classmethod
    def from_wire(cls, data: Any) -> Batch:
        """Parse untrusted JSON; any malformation becomes ``BatchError('malformed_batch')``."""
        if not isinstance(data, dict) or set(data) != {"header", "signature", "events"}:
            raise BatchError("malformed_batch", "expected an object with header, signature, events")
        try:
            signature = base64.b64decode(str(data["signature"]), validate=True)
            header = BatchHeader.model_validate(data["header"])
            if not isinstance(data["events"], list) or len(data["events"]) > MAX_BATCH_EVENTS:
                raise BatchError("malformed_batch", "events must be a list of at most 10000")
            events = [Event.model_validate(e) for e in data["events"]]
        except (ValidationError, binascii.Error, ValueError, TypeError) as exc:
            if isinstance(exc, BatchError):
                raise
            raise BatchError("malformed_batch", _short(exc)) from None
        return cls(header=header, signature=signature, events=events)

    def check_contents(self) -> None:
        """Everything that can be checked without keys or hub state."""
        h = self.header
        if h.last_seq - h.first_seq + 1 != h.count or len(self.events) != h.count:
            raise BatchError(
                "count_mismatch",
                f"header says seq {h.first_seq}..{h.last_seq} (count {h.count}) "
                f"but carries {len(self.events)} events",
            )
        for event in self.events:
            if event.node != h.node:
                raise BatchError(
                    "node_mismatch", f"event seq {event.seq} belongs to node {event.node!r}"
                )
        try:
            verify_chain(self.events, h.prev_event_hash, h.first_seq)
        except AuditError as exc:
            raise BatchError(exc.code, exc.message) from None
        if events_root(self.events) != h.merkle_root:
            raise BatchError(
                "merkle_root_mismatch",
                f"events seq {h.first_seq}..{h.last_seq} do not hash to the signed Merkle root",
            )

    def verify_signature(self, key: SM2PublicKey) -> None:
        if key.key_id != self.header.key_id:
            raise BatchError("bad_signature", "batch names a different key than the one given")
        try:
            key.verify(self.header.canonical(), self.signature)
        except (InvalidSignature, ValueError):
            raise BatchError(
                "bad_signature",
                f"SM2 signature of batch {self.header.first_seq}..{self.header.last_seq} "
                f"does not verify with key {self.header.key_id[:16]}",
            ) from None


def seal_batch(
    events: list[Event],
    prev_batch_hash: str,
    key: SM2PrivateKey,
    created: str | None = None,
) -> Batch:
    """Sign consecutive ``events`` of one node as the batch after ``prev_batch_hash``."""
    if not events:
        raise ValueError("a batch needs at least one event")
    first = events[0]
    header, signature = seal_bodies(
        first.node,
        first.seq,
        first.prev,
        [e.canonical() for e in events],
        prev_batch_hash,
        key,
        created,
    )
    return Batch(header=header, signature=signature, events=events)


def seal_bodies(
    node: str,
    first_seq: int,
    prev_event_hash: str,
    bodies: Sequence[bytes],
    prev_batch_hash: str,
    key: SM2PrivateKey,
    created: str | None = None,
) -> tuple[BatchHeader, bytes]:
    """Header and signature for consecutive events given by their canonical encodings.

    The agent seals straight from the bytes it stored, without rebuilding the models.
    """
    header = BatchHeader(
        node=node,
        firstSeq=first_seq,
        lastSeq=first_seq + len(bodies) - 1,
        count=len(bodies),
        prevEventHash=prev_event_hash,
        prevBatchHash=prev_batch_hash,
        keyId=key.key_id,
        merkleRoot=merkle.root(bodies).hex(),
        created=created or clock.rfc3339_micro(),
    )
    return header, key.sign(header.canonical())


def _short(exc: Exception) -> str:
    text = str(exc).replace("\n", "; ")
    return text[:300]
