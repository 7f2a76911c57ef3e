"""Transfer frames: what decode_frame accepts and how it refuses the rest."""

from __future__ import annotations

import struct

import pytest

from trustspace.canonical import canonical_json
from trustspace_agent.gateway.envelope import EnvelopeError, decode_frame, encode_frame

CORE = {"id": "tr-abc", "source": "vn-hanoi", "size": 4, "categories": ["logistics"]}


def raw_frame(core: bytes, approvals: bytes = b'{"approvals":[]}', sealed: bytes = b"x") -> bytes:
    n = struct.Struct(">I")
    return b"TSX1" + n.pack(len(core)) + core + n.pack(len(approvals)) + approvals + sealed


def test_round_trip() -> None:
    core = canonical_json(CORE)
    frame = decode_frame(encode_frame(core, [{"approver": "a"}], b"sealed"))
    assert (frame.core, frame.core_bytes, frame.approvals, frame.sealed) == (
        CORE,
        core,
        [{"approver": "a"}],
        b"sealed",
    )


@pytest.mark.parametrize(
    ("core", "message"),
    [
        (b'{"size":1.5}', "not canonical"),  # a float has no canonical form: refused, no crash
        (b'{"b":1,"a":2}', "not canonical"),  # keys out of order
        (b'{"a": 1}', "not canonical"),  # whitespace
        (b"[1]", "wrong shape"),
        (b"{nope", "not JSON"),
    ],
)
def test_headers_that_are_not_canonical_json_objects_are_refused(core: bytes, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message) as err:
        decode_frame(raw_frame(core))
    assert err.value.field == "core"


def test_truncated_and_foreign_frames() -> None:
    with pytest.raises(EnvelopeError, match="TSX1"):
        decode_frame(b"TSB1....")
    with pytest.raises(EnvelopeError, match="out of range"):
        decode_frame(b"TSX1" + struct.pack(">I", 99) + b"{}")
