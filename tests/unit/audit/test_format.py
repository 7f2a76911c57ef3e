from __future__ import annotations

import pytest

from trustspace.audit.batch import GENESIS_BATCH_HASH, Batch, BatchError, seal_batch
from trustspace.audit.canonical import canonical_json
from trustspace.audit.event import GENESIS_HASH, ChainError, EventFields, chain_event, verify_chain
from trustspace.crypto import SM2PrivateKey


def test_canonical_json_is_sorted_compact_utf8_and_refuses_floats() -> None:
    assert canonical_json({"b": 1, "a": ["x", {"d": None, "c": True}], "n": "广西"}) == (
        '{"a":["x",{"c":true,"d":null}],"b":1,"n":"广西"}'.encode()
    )
    with pytest.raises(TypeError):
        canonical_json({"x": 1.5})


def _chain(n: int) -> list:  # type: ignore[type-arg]
    prev, out = GENESIS_HASH, []
    for seq in range(1, n + 1):
        e = chain_event(
            "edge-th",
            seq,
            prev,
            EventFields(
                actor="gw",
                action="transfer.denied",
                subject=f"t{seq}",
                decision="deny",
                ruleIds=["VN-core-data"],
                policyVersion=4,
                classification="core",
                payloadDigest="ab" * 32,
            ),
        )
        prev = e.hash()
        out.append(e)
    return out


def test_event_round_trip_and_payload_only_as_digest() -> None:
    e = _chain(1)[0]
    d = e.to_dict()
    assert d["payloadDigest"] == "ab" * 32 and d["ruleIds"] == ["VN-core-data"]
    assert type(e).from_dict(d) == e
    assert e.hash() == type(e).from_dict(d).hash()


def test_chain_detects_removal_insertion_reorder_and_change() -> None:
    events = _chain(5)
    assert verify_chain(events, GENESIS_HASH, 1) == events[-1].hash()
    for broken in (
        [events[0], events[2], events[3]],
        [events[1], events[0], *events[2:]],
        [events[0], events[1].model_copy(update={"subject": "x"}), *events[2:]],
    ):
        with pytest.raises(ChainError):
            verify_chain(broken, GENESIS_HASH, 1)


def test_batch_signs_header_and_binds_events() -> None:
    key = SM2PrivateKey.generate()
    events = _chain(4)
    batch = seal_batch(events, GENESIS_BATCH_HASH, key)
    again = Batch.from_wire(batch.to_wire())
    again.check_contents()
    again.verify_signature(key.public_key())
    with pytest.raises(BatchError, match="bad_signature"):
        again.verify_signature(SM2PrivateKey.generate().public_key())
    last = events[-1].model_copy(update={"decision": "allow"})
    with pytest.raises(BatchError, match="merkle_root_mismatch"):
        batch.model_copy(update={"events": [*events[:-1], last]}).check_contents()
    with pytest.raises(BatchError, match="count_mismatch"):
        batch.model_copy(update={"events": events[:-1]}).check_contents()
    for junk in (None, [], {"header": {}}, {"header": {}, "signature": "!!", "events": []}):
        with pytest.raises(BatchError, match="malformed_batch"):
            Batch.from_wire(junk)


def test_canonical_json_is_byte_identical_to_the_reference_encoding() -> None:
    import enum

    from trustspace.canonical import reference_json

    class Kind(enum.StrEnum):
        A = "a"

    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for i in range(0, len(chars), 4096):
        value = {
            "k": "".join(chars[i : i + 4096]),
            "".join(chars[i : i + 3]): [i, -i, 2**63 - 1, -(2**63), True, None],
            "nested": {"z": [], "a": {}, "e": Kind.A, "t": ("x", 1)},
        }
        assert canonical_json(value) == reference_json(value)
    assert canonical_json({"big": 2**70}) == b'{"big":1180591620717411303424}'
    for bad in ({"x": 1.5}, [[2.0]], {1: "int key"}, {"when": __import__("datetime").date.today()}):
        with pytest.raises(TypeError):
            canonical_json(bad)
