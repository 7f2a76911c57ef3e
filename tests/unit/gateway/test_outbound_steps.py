"""Each outbound step on its own (decide -> admit -> protect -> audit -> deliver/hold), with
a compiled policy bundle, real SM2 keys and a fake of the gateway's stores and peers."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from steps_support import (
    DESTINATION,
    LINK,
    FakeGateway,
    engine,
    key_pair,
    no_pseudonyms,
    transfer_input,
)

from trustspace.crypto import DecryptionError, SM2PublicKey, sm3
from trustspace.policy import Verdict
from trustspace_agent.gateway.answers import GatewayError
from trustspace_agent.gateway.breaker import OPEN, BreakerBoard, BreakerSettings
from trustspace_agent.gateway.delivery import Outcome
from trustspace_agent.gateway.dispatch import deliver, hold
from trustspace_agent.gateway.envelope import decode_frame, encode_frame, open_sealed
from trustspace_agent.gateway.held_store import HELD
from trustspace_agent.gateway.links import admit
from trustspace_agent.gateway.outbound import (
    audit_events,
    decide,
    protect_transfer,
    requested_event,
)
from trustspace_agent.gateway.transfer_input import InputError

RECORDS = [{"name": "Nguyen", "box": "MSKU1234565"}]


# --- decide ---------------------------------------------------------------------------------


def test_decide_sends_records_as_compact_json_and_decides_on_that_size() -> None:
    decision, records_bytes, size = decide(engine(), transfer_input(records=RECORDS), 1024)
    assert decision.verdict == Verdict.ALLOW
    assert records_bytes == json.dumps(RECORDS, separators=(",", ":")).encode()
    assert size == len(records_bytes)


def test_decide_takes_bytes_as_they_are() -> None:
    decision, records_bytes, size = decide(engine(), transfer_input(data=b"x" * 100), 1024)
    assert (decision.verdict, records_bytes, size) == (Verdict.ALLOW, None, 100)


def test_decide_refuses_records_over_the_limit_before_deciding() -> None:
    with pytest.raises(InputError) as raised:
        decide(engine(), transfer_input(records=RECORDS), 10)
    assert (raised.value.status, raised.value.code, raised.value.field) == (
        413,
        "payload_too_large",
        "records",
    )


@pytest.mark.parametrize(
    ("category", "verdict"),
    [("trade", Verdict.ALLOW), ("health", Verdict.REVIEW), ("genetic", Verdict.DENY)],
)
def test_decide_answers_what_the_bundle_says(category: str, verdict: Verdict) -> None:
    decision, _, _ = decide(engine(), transfer_input(category, data=b"x"), 1024)
    assert decision.verdict == verdict


# --- admit ----------------------------------------------------------------------------------


def test_admit_lets_a_transfer_through_closed_breakers(tmp_path: Path) -> None:
    board = BreakerBoard(tmp_path / "b.json")
    link, caller, probing = admit(board, BreakerSettings(), LINK, "app", 0.0)
    assert (link.kind, link.name, caller.kind, caller.name, probing) == (
        "link",
        LINK,
        "caller",
        "app",
        [],
    )


def test_admit_refuses_on_an_open_link_with_retry_after(tmp_path: Path) -> None:
    board = BreakerBoard(tmp_path / "b.json")
    settings = BreakerSettings(cool_down=60)
    board.get("link", LINK, settings).trip_manually(0.0, "tripped by the test")
    assert board.get("link", LINK).state == OPEN
    with pytest.raises(GatewayError) as raised:
        admit(board, settings, LINK, "app", 1.0)
    err = raised.value
    assert (err.status, err.code) == (503, "circuit_open")
    assert err.extra["breaker"]["kind"] == "link"
    assert int(err.headers["Retry-After"]) >= 1


def test_admit_asks_the_callers_breaker_first(tmp_path: Path) -> None:
    board = BreakerBoard(tmp_path / "b.json")
    settings = BreakerSettings(cool_down=60)
    board.get("link", LINK, settings).trip_manually(0.0, "link")
    board.get("caller", "app", settings).trip_manually(0.0, "caller")
    with pytest.raises(GatewayError) as raised:
        admit(board, settings, LINK, "app", 1.0)
    assert (raised.value.status, raised.value.code) == (429, "caller_circuit_open")


def test_admit_names_the_breakers_that_probe_after_their_cool_down(tmp_path: Path) -> None:
    board = BreakerBoard(tmp_path / "b.json")
    settings = BreakerSettings(cool_down=1)
    board.get("link", LINK, settings).trip_manually(0.0, "link")
    link, _, probing = admit(board, settings, LINK, "app", 10.0)
    assert probing == [link]


# --- protect --------------------------------------------------------------------------------


def test_protect_seals_for_the_destination_and_only_it_opens_it() -> None:
    mine, theirs = key_pair()
    item = transfer_input(data=b"container manifest")
    decision, records_bytes, _ = decide(engine(), item, 1024)
    original = b"container manifest"
    core, core_bytes, sealed, fields = protect_transfer(
        "tr-1",
        item,
        decision,
        records_bytes,
        original,
        sm3(original).hex(),
        no_pseudonyms,
        lambda node: theirs.public_key(),
        lambda: mine,
    )
    assert fields == []
    assert core["id"] == "tr-1" and core["destination"] == DESTINATION
    assert core["payloadKind"] == "bytes" and core["size"] == len(original)
    assert core["payloadDigest"] == sm3(original).hex()
    assert (core["senderKeyId"], core["recipientKeyId"]) == (mine.key_id, theirs.key_id)
    assert core["decision"]["verdict"] == "allow"
    frame = decode_frame(encode_frame(core_bytes, [], sealed))
    assert open_sealed(frame, theirs, mine.public_key()) == original
    stranger = key_pair()[0]
    with pytest.raises(DecryptionError):
        open_sealed(frame, stranger, mine.public_key())


def test_protect_desensitises_records_and_digests_what_leaves() -> None:
    mine, theirs = key_pair()
    item = transfer_input("personal", records=RECORDS)
    decision, records_bytes, _ = decide(engine(), item, 1024)
    assert records_bytes is not None
    core, _, sealed, fields = protect_transfer(
        "tr-2",
        item,
        decision,
        records_bytes,
        records_bytes,
        sm3(records_bytes).hex(),
        no_pseudonyms,
        lambda node: theirs.public_key(),
        lambda: mine,
    )
    assert fields == [{"field": "name", "method": "mask"}]
    assert core["payloadKind"] == "records"
    assert core["payloadDigest"] != sm3(records_bytes).hex()
    assert core["desensitised"] == fields
    assert b"Nguyen" not in sealed


def test_protect_refuses_bytes_a_policy_would_desensitise_before_looking_up_keys() -> None:
    item = transfer_input("personal", data=b"opaque")
    decision, _, _ = decide(engine(), item, 1024)

    def unknown(node: str) -> SM2PublicKey:
        raise GatewayError(422, "unknown_node", node)

    with pytest.raises(GatewayError) as raised:
        protect_transfer(
            "tr-3",
            item,
            decision,
            None,
            b"opaque",
            sm3(b"opaque").hex(),
            no_pseudonyms,
            unknown,
            lambda: key_pair()[0],
        )
    assert (raised.value.status, raised.value.code) == (422, "opaque_payload")


# --- audit ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "action"), [("trade", "transfer.allowed"), ("health", "transfer.queued")]
)
def test_audit_records_requested_decision_and_protected_in_that_order(
    category: str, action: str
) -> None:
    item = transfer_input(category, data=b"x")
    decision, _, size = decide(engine(), item, 1024)
    base = {"actor": "app", "subject": "tr-4", "classification": "internal"}
    requested = requested_event(base, item, sm3(b"x").hex(), size)
    core = {"payloadDigest": "d" * 64}
    events = audit_events(base, requested, decision, core, [])
    assert [e.action for e in events] == ["transfer.requested", action, "transfer.protected"]
    assert events[0] is requested
    assert json.loads(requested.detail or "")["size"] == 1
    assert events[1].decision == decision.verdict.value
    assert events[2].payload_digest == "d" * 64
    assert all(e.subject == "tr-4" and e.actor == "app" for e in events)


# --- deliver / hold -------------------------------------------------------------------------

CORE = {"classification": "internal", "payloadDigest": "d" * 64, "size": 10}


@pytest.mark.asyncio
async def test_deliver_audits_the_receipt_and_counts_the_transfer(tmp_path: Path) -> None:
    fake = FakeGateway(tmp_path, Outcome(201, {"id": "tr-5"}), {DESTINATION: "https://peer"})
    gw = fake.as_gateway()
    answer = await deliver(gw, "tr-5", DESTINATION, LINK, b"F", dict(CORE), "app", [])
    assert answer.status == 201
    assert json.loads(answer.body)["receipt"] == {"id": "tr-5"}  # type: ignore[arg-type]
    assert fake.peers.sent == [("https://peer", b"F")]
    assert [e.action for e in fake.recorded] == ["transfer.delivered"]
    assert fake.board.get("link", LINK).allowed == 1


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("outcome", "status", "code"),
    [
        (Outcome(0, {"message": "down"}), 504, "destination_unreachable"),
        (Outcome(403, {"code": "inbound_denied"}), 502, "destination_refused"),
    ],
)
async def test_deliver_audits_a_failure_and_refuses(
    tmp_path: Path, outcome: Outcome, status: int, code: str
) -> None:
    fake = FakeGateway(tmp_path, outcome, {DESTINATION: "https://peer"})
    with pytest.raises(GatewayError) as raised:
        await deliver(fake.as_gateway(), "tr-6", DESTINATION, LINK, b"F", dict(CORE), "app", [])
    assert (raised.value.status, raised.value.code) == (status, code)
    assert raised.value.extra["destinationStatus"] == outcome.status
    assert [e.action for e in fake.recorded] == ["transfer.failed"]


@pytest.mark.asyncio
async def test_deliver_without_a_route_sends_nothing(tmp_path: Path) -> None:
    fake = FakeGateway(tmp_path, Outcome(201, {}), {})
    with pytest.raises(GatewayError) as raised:
        await deliver(fake.as_gateway(), "tr-7", DESTINATION, LINK, b"F", dict(CORE), "app", [])
    assert raised.value.code == "destination_unreachable"
    assert fake.peers.sent == []


@pytest.mark.asyncio
async def test_hold_keeps_the_sealed_transfer_until_its_first_timeout(tmp_path: Path) -> None:
    fake = FakeGateway(tmp_path, Outcome(0, {}), {})
    item = transfer_input("health", data=b"x")
    decision, _, _ = decide(engine(), item, 1024)
    groups = [a.to_dict() for a in decision.approvals]
    core = {**CORE, "approvalGroups": groups}
    answer = await hold(fake.as_gateway(), "tr-8", item, core, b"C", b"S", decision, "app", [])
    assert answer.status == 202
    body = json.loads(answer.body)  # type: ignore[arg-type]
    assert (body["state"], body["channel"]) == (HELD, "review")
    [(tid, expires, meta, core_bytes, sealed)] = fake.reviews.added
    assert 3590 < expires - time.time() <= 3600  # the group's 1h
    assert (tid, core_bytes, sealed, meta["caller"], meta["groups"]) == (
        "tr-8",
        b"C",
        b"S",
        "app",
        groups,
    )
    assert fake.board.get("link", LINK).in_review == 1
    assert fake.recorded == []  # its events were recorded before it was held
