"""An audit event and the SM3 hash chain that links each node's events.

Every operation on a node (transfer requested, allowed, denied, queued for review, approved,
delivered, key rotated, breaker tripped) becomes one :class:`Event`. The edge assigns the
per-node sequence number ``seq`` (1, 2, 3, ...) and ``prev``, the hash of the event before
(:data:`GENESIS_HASH` for seq 1), so removing, inserting or reordering an event breaks the
chain. Payloads are never recorded: only their SM3 digest.

An event's hash is ``SM3(canonical_json(event.to_dict()))``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints

from trustspace import clock
from trustspace.audit.canonical import canonical_json
from trustspace.audit.errors import AuditError
from trustspace.crypto import sm3

GENESIS_HASH = "0" * 64
"""``prev`` of a node's first event."""

Hex32 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=253)]
Text = Annotated[str, StringConstraints(max_length=1024)]

KNOWN_ACTIONS = frozenset(
    {
        "transfer.requested",
        "transfer.allowed",
        "transfer.denied",
        "transfer.queued",
        "transfer.approved",
        "transfer.delivered",
        "key.rotated",
        "breaker.tripped",
        "breaker.reset",
        "evidence.registered",
    }
)
"""Actions the data space emits today; others are accepted (forward compatibility)."""

_ACTION = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


class EventFields(BaseModel):
    """What a component reports; the store adds node, seq, time and prev."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    actor: Name
    action: Annotated[str, StringConstraints(pattern=_ACTION.pattern)]
    subject: Name
    decision: Annotated[str, StringConstraints(max_length=32)] | None = None
    rule_ids: Annotated[list[Name], Field(max_length=64)] = Field(
        default_factory=list, alias="ruleIds"
    )
    policy_version: Annotated[int, Field(ge=0)] | None = Field(default=None, alias="policyVersion")
    classification: Annotated[str, StringConstraints(max_length=32)] | None = None
    payload_digest: Hex32 | None = Field(default=None, alias="payloadDigest")
    detail: Text | None = None


class Event(BaseModel):
    """One chained audit event, as stored at the edge, shipped and kept at the hub."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    node: Name
    seq: Annotated[int, Field(ge=1)]
    time: Annotated[str, StringConstraints(max_length=40)]
    actor: Name
    action: Annotated[str, StringConstraints(pattern=_ACTION.pattern)]
    subject: Name
    decision: Annotated[str, StringConstraints(max_length=32)] | None = None
    rule_ids: Annotated[list[Name], Field(max_length=64)] = Field(
        default_factory=list, alias="ruleIds"
    )
    policy_version: Annotated[int, Field(ge=0)] | None = Field(default=None, alias="policyVersion")
    classification: Annotated[str, StringConstraints(max_length=32)] | None = None
    payload_digest: Hex32 | None = Field(default=None, alias="payloadDigest")
    detail: Text | None = None
    prev: Hex32
    _canonical: bytes | None = PrivateAttr(default=None)

    def to_dict(self) -> dict[str, Any]:
        """The wire/JSON form (camelCase, absent optionals omitted)."""
        return self.model_dump(by_alias=True, exclude_none=True)

    def __eq__(self, other: object) -> bool:
        # The fields only: the cached encoding is not part of the event's value.
        if not isinstance(other, Event):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash(self.canonical())

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Event:
        copy = super().model_copy(update=update, deep=deep)
        copy._canonical = None  # an updated copy encodes differently
        return copy

    def canonical(self) -> bytes:
        # Frozen, so the encoding never changes: computed once (the hub needs it for the
        # chain, the batch Merkle root, the stored body and the log leaf).
        cached = self.__pydantic_private__.get("_canonical") if self.__pydantic_private__ else None
        if cached is None:
            cached = canonical_json(self.to_dict())
            self._canonical = cached
        return cached

    def hash(self) -> str:
        """Hex SM3 of the canonical encoding; the next event's ``prev``."""
        return sm3(self.canonical()).hex()

    @classmethod
    def from_dict(cls, data: Any) -> Event:
        return cls.model_validate(data)


def chain_event(
    node: str, seq: int, prev: str, fields: EventFields, time: str | None = None
) -> Event:
    """The event that follows ``prev`` (hex) with sequence ``seq``."""
    return Event(
        node=node,
        seq=seq,
        time=time or clock.rfc3339_micro(),
        prev=prev,
        **fields.model_dump(by_alias=False),
    )


def verify_chain(events: list[Event], prev: str, first_seq: int) -> str:
    """Check that ``events`` continue a chain whose head hash is ``prev``; return the new head.

    Raises :class:`ChainError` naming the first event that does not fit.
    """
    expected_seq = first_seq
    for event in events:
        if event.seq != expected_seq:
            raise ChainError("seq_not_contiguous", f"expected seq {expected_seq}, got {event.seq}")
        if event.prev != prev:
            raise ChainError(
                "chain_broken", f"event seq {event.seq}: prev does not match the preceding event"
            )
        prev = event.hash()
        expected_seq += 1
    return prev


class ChainError(AuditError):
    """An event that does not continue the chain."""
