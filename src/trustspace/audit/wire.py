"""Audit events as plain dicts on the hot paths (agent append and seal, hub ingest).

:class:`~trustspace.audit.event.Event` (a pydantic model) is the reference: it defines an
event, and ``audit verify`` and every rejection message use it. Building one costs about
10 µs, which at tens of thousands of events per second is most of the budget. This module
checks the same constraints on plain dicts in one pydantic-core call per list, and encodes
them with orjson.

It is exact, not a shortcut: :data:`EventDict` repeats the model's constraints field for
field (a unit test keeps the two in step; integers are also capped at 64 bits) and is
*strict* (no coercion: the validated dict is the input dict); absent optionals must be
absent rather than null, and ``ruleIds`` must be present. A dict that passes is therefore
already in the model's ``to_dict()`` form, so its orjson encoding is byte for byte the
canonical encoding (orjson with sorted keys writes what
:func:`~trustspace.canonical.canonical_json` writes for str/int/list values; a unit test
compares them over every Unicode code point). Anything else is left to the model.

No ``from __future__ import annotations`` here: TypedDict must see ``NotRequired`` itself.
"""

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, NotRequired

import orjson
from pydantic import (
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    with_config,
)
from typing_extensions import TypedDict

from trustspace.audit import merkle
from trustspace.audit.batch import MAX_BATCH_EVENTS, BatchHeader
from trustspace.audit.errors import AuditError
from trustspace.audit.event import _ACTION, Hex32, Name, Text
from trustspace.crypto import InvalidSignature, SM2PublicKey, sm3

# orjson encodes 64-bit integers only; a larger one (never seen in practice) takes the model path.
_INT64 = 2**63 - 1


@with_config(ConfigDict(extra="forbid", strict=True))
class EventDict(TypedDict):
    """An :class:`~trustspace.audit.event.Event` in its canonical wire form."""

    node: Name
    seq: Annotated[int, Field(ge=1, le=_INT64)]
    time: Annotated[str, StringConstraints(max_length=40)]
    actor: Name
    action: Annotated[str, StringConstraints(pattern=_ACTION.pattern)]
    subject: Name
    decision: NotRequired[Annotated[str, StringConstraints(max_length=32)]]
    ruleIds: Annotated[list[Name], Field(max_length=64)]
    policyVersion: NotRequired[Annotated[int, Field(ge=0, le=_INT64)]]
    classification: NotRequired[Annotated[str, StringConstraints(max_length=32)]]
    payloadDigest: NotRequired[Hex32]
    detail: NotRequired[Text]
    prev: Hex32


EVENT_LIST: TypeAdapter[list[EventDict]] = TypeAdapter(list[EventDict])
"""``validate_python(items)`` raises pydantic's ValidationError unless every item is canonical."""


def encode(event: EventDict | dict[str, Any]) -> bytes:
    """The canonical encoding of an event dict that :data:`EVENT_LIST` accepted."""
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS)


# Not frozen: a frozen dataclass costs about 1 µs more to build, once per event here.
@dataclass(slots=True)
class WireEvent:
    """An event known by its canonical bytes: what the hub stores and hashes.

    Offers the part of :class:`~trustspace.audit.event.Event`'s interface that storage
    needs (``seq``, ``time``, ``canonical()``, ``hash()``).
    """

    seq: int
    time: str
    body: bytes
    digest: str
    """Hex SM3 of ``body``: the next event's ``prev``."""

    @classmethod
    def of(cls, event: EventDict) -> "WireEvent":
        body = encode(event)
        return cls(event["seq"], event["time"], body, sm3(body).hex())

    def canonical(self) -> bytes:
        return self.body

    def hash(self) -> str:
        return self.digest


@dataclass(frozen=True, slots=True)
class CheckedBatch:
    """A batch whose signature, events, chain and Merkle root verified (a ``ShippedBatch``)."""

    header: BatchHeader
    signature: bytes
    events: list[WireEvent]


def check_wire_batch(
    data: Any, node: str, key_for: Callable[[str], SM2PublicKey]
) -> CheckedBatch | None:
    """The hub's stateless checks on a batch of ``node`` in wire form, or None.

    The checks of ``Batch.from_wire`` + ``verify_signature`` + ``check_contents``: the
    header's SM2 signature with the key ``key_for(key id)`` (the trust bundle's answer, which
    raises for unknown or retired keys), count, node, seq contiguity, the SM3 chain from the
    header's ``prevEventHash`` and the Merkle root. Each event is encoded once; that encoding
    is hashed for the chain, the root and (by storage) the log leaf.

    None means "not proven good here", never "bad": the caller then runs the model path,
    which names the precise reason for a rejection (or accepts a valid batch that is not in
    canonical wire form, e.g. an explicit ``null``).
    """
    if not isinstance(data, dict) or data.keys() != {"header", "signature", "events"}:
        return None
    items, sig = data["events"], data["signature"]
    if not isinstance(items, list) or not isinstance(sig, str):
        return None
    if not 1 <= len(items) <= MAX_BATCH_EVENTS:
        return None
    try:
        header = BatchHeader.model_validate(data["header"])
        signature = base64.b64decode(sig, validate=True)
        events = EVENT_LIST.validate_python(items)
    except (ValidationError, binascii.Error, ValueError):
        return None
    if header.node != node or len(events) != header.count:
        return None
    if header.last_seq - header.first_seq + 1 != header.count:
        return None
    try:
        key = key_for(header.key_id)
        if key.key_id != header.key_id:
            return None
        key.verify(header.canonical(), signature)
    except (AuditError, InvalidSignature, ValueError):
        return None
    prev, seq = header.prev_event_hash, header.first_seq
    out: list[WireEvent] = []
    leaves: list[bytes] = []
    for event in events:
        if event["seq"] != seq or event["prev"] != prev or event["node"] != node:
            return None
        wire = WireEvent.of(event)
        out.append(wire)
        leaves.append(merkle.leaf_hash(wire.body))
        prev, seq = wire.digest, seq + 1
    if merkle.root_from_hashes(leaves).hex() != header.merkle_root:
        return None
    return CheckedBatch(header, signature, out)
