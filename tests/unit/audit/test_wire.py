"""The plain-dict event path agrees with the Event model: same constraints, same bytes, and
the hub's fast batch check never accepts what the model path would reject."""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
from typing import Any, get_type_hints

import pytest

from trustspace.audit.batch import GENESIS_BATCH_HASH, Batch, BatchError, seal_batch
from trustspace.audit.canonical import canonical_json
from trustspace.audit.errors import AuditError
from trustspace.audit.event import GENESIS_HASH, Event, EventFields, chain_event
from trustspace.audit.wire import EVENT_LIST, EventDict, check_wire_batch, encode
from trustspace.crypto import SM2PrivateKey, SM2PublicKey
from trustspace.trust import NodeKey, TrustedNode, build_bundle
from trustspace_operator.collector.ingest import check_batch

KEY = SM2PrivateKey.generate()
NODE = "edge-vn"


def _events(n: int, subject: str = "s") -> list[Event]:
    prev, out = GENESIS_HASH, []
    for seq in range(1, n + 1):
        fields = EventFields(
            actor="gw",
            action="transfer.denied",
            subject=f"{subject}{seq}",
            decision="deny",
            ruleIds=["VN-core-data"],
            policyVersion=4,
            classification="core",
            payloadDigest="ab" * 32,
            detail='广西 → Hà Nội\n"quoted"\t\x01',
        )
        e = chain_event(NODE, seq, prev, fields)
        prev = e.hash()
        out.append(e)
    return out


def test_event_dict_has_the_model_fields_and_only_ruleids_defaults() -> None:
    aliases = {f.alias or name for name, f in Event.model_fields.items()}
    assert set(get_type_hints(EventDict)) == aliases
    required = {f.alias or n for n, f in Event.model_fields.items() if f.is_required()}
    assert EventDict.__required_keys__ == required | {"ruleIds"}


def test_encoding_is_the_canonical_encoding_for_every_code_point() -> None:
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for i in range(0, len(chars), 2048):
        value = {"k": chars[i : i + 2048], "a" + "".join(chars[i : i + 3]): [i, -i, 2**63 - 1]}
        assert encode(value) == canonical_json(value)
    for e in _events(3):
        d = e.to_dict()
        assert EVENT_LIST.validate_python([d]) == [d]
        assert encode(d) == e.canonical()


def _bundle() -> Any:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    node = TrustedNode(
        name=NODE, role="edge", jurisdiction="VN", keys=[NodeKey.of(KEY.public_key(), start)]
    )
    return build_bundle([node], serial=1, hub_key_id=KEY.key_id)


def _key(key_id: str) -> SM2PublicKey:
    return _bundle().node_key(NODE, key_id)


def test_fast_check_gives_the_models_bytes_and_hashes() -> None:
    batch = seal_batch(_events(7), GENESIS_BATCH_HASH, KEY)
    checked = check_wire_batch(json.loads(json.dumps(batch.to_wire())), NODE, _key)
    assert checked is not None
    assert checked.header == batch.header and checked.signature == batch.signature
    assert [e.canonical() for e in checked.events] == [e.canonical() for e in batch.events]
    assert [e.hash() for e in checked.events] == [e.hash() for e in batch.events]
    assert [(e.seq, e.time) for e in checked.events] == [(e.seq, e.time) for e in batch.events]


def test_an_extra_key_is_refused_by_both_paths() -> None:
    wire = seal_batch(_events(3), GENESIS_BATCH_HASH, KEY).to_wire()
    wire["events"][1]["note"] = "x"
    assert check_wire_batch(wire, NODE, _key) is None
    with pytest.raises(BatchError, match="malformed_batch"):
        check_batch(wire, NODE, _bundle(), dt.datetime.now(dt.UTC))


def test_explicit_null_for_an_absent_field_is_accepted_through_the_model() -> None:
    prev, events = GENESIS_HASH, []
    for seq in (1, 2):
        e = chain_event(NODE, seq, prev, EventFields(actor="a", action="x", subject=f"s{seq}"))
        prev = e.hash()
        events.append(e)
    wire = seal_batch(events, GENESIS_BATCH_HASH, KEY).to_wire()
    wire["events"][0]["decision"] = None
    assert check_wire_batch(wire, NODE, _key) is None
    accepted = check_batch(wire, NODE, _bundle(), dt.datetime.now(dt.UTC))
    assert [e.hash() for e in accepted.events] == [e.hash() for e in events]


def _mutations(wire: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    out = copy.deepcopy(wire)
    events = out["events"]
    choice = rng.randrange(9)
    i = rng.randrange(len(events))
    if choice == 0:
        events[i]["subject"] += "x"
    elif choice == 1:
        events[i]["seq"] += rng.choice((-1, 1))
    elif choice == 2:
        events[i], events[-1] = events[-1], events[i]
    elif choice == 3:
        del events[i]
    elif choice == 4:
        events[i]["prev"] = "0" * 64
    elif choice == 5:
        events[i]["policyVersion"] = rng.choice(("4", 4.0, True, -1, None, 2**70))
    elif choice == 6:
        events[i][rng.choice(list(events[i]))] = rng.choice((None, "", 7, [], "a" * 300))
    elif choice == 7:
        out["header"] = {**out["header"], "count": out["header"]["count"] + 1}
    else:
        events[i]["node"] = "edge-th"
    return out


def test_fast_check_never_accepts_what_the_model_path_rejects() -> None:
    batch = seal_batch(_events(6), GENESIS_BATCH_HASH, KEY)
    wire = batch.to_wire()
    rng = random.Random(6)
    now = dt.datetime.now(dt.UTC)
    for _ in range(400):
        mutated = _mutations(wire, rng)
        fast = check_wire_batch(mutated, NODE, _key)
        try:
            model: Batch | None = Batch.from_wire(mutated)
            assert model is not None
            model.verify_signature(KEY.public_key())
            model.check_contents()
        except AuditError:
            model = None
        if fast is not None:
            assert model is not None, mutated
            assert [e.canonical() for e in fast.events] == [e.canonical() for e in model.events]
        if model is None:
            with pytest.raises(AuditError):
                check_batch(mutated, NODE, _bundle(), now)
