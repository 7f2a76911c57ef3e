"""Frames received from a peer, checked without a listener: a frame sealed by the outbound
steps is accepted, anything off is refused with its status and counted on the link, and
every accepted frame is audited in one append before it is stored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from steps_support import DESTINATION, LINK, SOURCE, engine, key_pair, no_pseudonyms, transfer_input

from trustspace.audit.canonical import canonical_json
from trustspace.audit.event import EventFields
from trustspace.crypto import SM2PrivateKey, sm3
from trustspace_agent.gateway.answers import GatewayError
from trustspace_agent.gateway.approvals import ApproverKeys
from trustspace_agent.gateway.breaker import BreakerBoard, BreakerSettings, Trip
from trustspace_agent.gateway.core import Gateway
from trustspace_agent.gateway.envelope import encode_frame
from trustspace_agent.gateway.inbound import accept, receive
from trustspace_agent.gateway.outbound import decide, protect_transfer


def sealed_frame(
    sender: SM2PrivateKey,
    recipient: SM2PrivateKey,
    category: str = "trade",
    tid: str = "tr-1",
    **core: Any,
) -> bytes:
    """A frame as the source gateway sends it, optionally with ``core`` fields replaced after
    sealing (the seal covers the core: what a forger would send)."""
    payload = f"payload of {tid}".encode()
    item = transfer_input(category, data=payload)
    decision, _, _ = decide(engine(), item, 1024)
    sealed_core, core_bytes, sealed, _ = protect_transfer(
        tid,
        item,
        decision,
        None,
        payload,
        sm3(payload).hex(),
        no_pseudonyms,
        lambda node: recipient.public_key(),
        lambda: sender,
    )
    if core:
        sealed_core.update(core)
        core_bytes = canonical_json(sealed_core)
    return encode_frame(core_bytes, [], sealed)


@dataclass
class FakeConfig:
    certifications: list[str] = field(default_factory=list)


@dataclass
class FakeInbox:
    stored: list[tuple[Any, ...]] = field(default_factory=list)

    async def call(self, fn: Any) -> Any:
        return fn(self)

    def add_many(self, rows: list[tuple[Any, ...]], manifest: bytes | None) -> list[bool]:
        fresh = [row[0]["id"] not in {s[0]["id"] for s in self.stored} for row in rows]
        self.stored.extend(rows)
        return fresh


class FakeGateway:
    """What :mod:`trustspace_agent.gateway.inbound` reads of the destination's Gateway."""

    def __init__(self, tmp_path: Path, key: SM2PrivateKey) -> None:
        self.node = DESTINATION
        self.config = FakeConfig()
        self.board = BreakerBoard(tmp_path / "breakers.json")
        self.approvers = ApproverKeys(None)
        self.own_key = lambda: key
        self.inbox = FakeInbox()
        self.appends: list[list[EventFields]] = []
        self.refusals: list[tuple[str, str]] = []
        self.trips: list[Trip] = []
        self.fail_audit = False

    def settings_for(self, engine: Any, decision: Any) -> BreakerSettings:
        return BreakerSettings(denied_count=1, cool_down=60)

    async def on_trip(self, trip: Trip | None, actor: str) -> None:
        if trip is not None:
            self.trips.append(trip)

    async def record(self, events: list[EventFields]) -> None:
        if self.fail_audit:
            raise GatewayError(503, "audit_unavailable", "full")
        assert not self.inbox.stored or self.appends, "stored before audited"
        self.appends.append(events)

    async def record_refusal(self, actor: str, subject: str, exc: Any, action: str) -> None:
        self.refusals.append((subject, exc.code))

    def as_gateway(self) -> Gateway:
        return cast(Gateway, self)


@pytest.fixture
def keys() -> tuple[SM2PrivateKey, SM2PrivateKey]:
    return key_pair()


@pytest.mark.asyncio
async def test_a_sealed_frame_is_accepted_and_decrypted(
    tmp_path: Path, keys: tuple[SM2PrivateKey, SM2PrivateKey]
) -> None:
    sender, recipient = keys
    fake = FakeGateway(tmp_path, recipient)
    raw = sealed_frame(sender, recipient)
    a = await accept(fake.as_gateway(), engine(), raw, SOURCE, sender.public_key(), 0.0)
    assert (a.tid, a.link_name, a.plaintext) == ("tr-1", LINK, b"payload of tr-1")
    assert a.decision.verdict.value == "allow"
    assert a.link is fake.board.get("link", LINK) and a.probing == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("raw_of", "node", "status", "code"),
    [
        (lambda s, r: b"not a frame", SOURCE, 400, "malformed_frame"),
        (lambda s, r: sealed_frame(s, r), "vn-2", 403, "node_mismatch"),
        (lambda s, r: sealed_frame(s, r, destination="kh-1"), SOURCE, 421, "wrong_destination"),
        (lambda s, r: sealed_frame(s, key_pair()[1]), SOURCE, 409, "stale_recipient_key"),
        (lambda s, r: sealed_frame(s, r, "health"), SOURCE, 403, "approvals_missing"),
        (lambda s, r: sealed_frame(s, r, "genetic"), SOURCE, 403, "inbound_denied"),
        (lambda s, r: sealed_frame(s, r, payloadDigest="0" * 64), SOURCE, 400, "decryption_failed"),
    ],
)
async def test_a_frame_that_is_off_is_refused_with_its_status(
    tmp_path: Path,
    keys: tuple[SM2PrivateKey, SM2PrivateKey],
    raw_of: Callable[[SM2PrivateKey, SM2PrivateKey], bytes],
    node: str,
    status: int,
    code: str,
) -> None:
    sender, recipient = keys
    fake = FakeGateway(tmp_path, recipient)
    with pytest.raises(GatewayError) as raised:
        await accept(
            fake.as_gateway(), engine(), raw_of(sender, recipient), node, sender.public_key(), 0.0
        )
    assert (raised.value.status, raised.value.code) == (status, code)


@pytest.mark.asyncio
async def test_a_denied_frame_counts_on_the_link_and_trips_it(
    tmp_path: Path, keys: tuple[SM2PrivateKey, SM2PrivateKey]
) -> None:
    sender, recipient = keys
    fake = FakeGateway(tmp_path, recipient)
    with pytest.raises(GatewayError):
        raw = sealed_frame(sender, recipient, "genetic")
        await accept(fake.as_gateway(), engine(), raw, SOURCE, sender.public_key(), 0.0)
    link = fake.board.get("link", LINK)
    assert link.denied == 1
    assert [t.breaker for t in fake.trips] == [link]  # denied_count=1 in this fake
    with pytest.raises(GatewayError) as raised:  # the next frame meets the open link
        raw = sealed_frame(sender, recipient, tid="tr-2")
        await accept(fake.as_gateway(), engine(), raw, SOURCE, sender.public_key(), 1.0)
    assert (raised.value.code, raised.value.extra["id"]) == ("circuit_open", "tr-2")


@pytest.mark.asyncio
async def test_receive_audits_accepted_frames_in_one_append_then_stores_them(
    tmp_path: Path, keys: tuple[SM2PrivateKey, SM2PrivateKey]
) -> None:
    sender, recipient = keys
    fake = FakeGateway(tmp_path, recipient)
    frames = [
        sealed_frame(sender, recipient, tid="tr-1"),
        sealed_frame(sender, key_pair()[1], tid="tr-2"),  # for another key: refused alone
        sealed_frame(sender, recipient, tid="tr-3"),
    ]
    evidence = [{"signature": "sig", "bodyDigest": "d"} for _ in frames]
    gw = fake.as_gateway()
    results = await receive(gw, engine(), SOURCE, sender.public_key(), frames, evidence)
    assert [s for s, _ in results] == [201, 409, 201]
    assert [b["id"] for s, b in results if s == 201] == ["tr-1", "tr-3"]
    assert fake.refusals == [("tr-2", "stale_recipient_key")]
    [append] = fake.appends
    assert [(e.action, e.subject) for e in append] == [
        ("transfer.received", "tr-1"),
        ("transfer.received", "tr-3"),
    ]
    assert [row[0]["id"] for row in fake.inbox.stored] == ["tr-1", "tr-3"]
    assert fake.board.get("link", LINK).allowed == 2
    again = await receive(gw, engine(), SOURCE, sender.public_key(), frames[:1], evidence[:1])
    assert again[0][0] == 200 and again[0][1]["duplicate"] is True


@pytest.mark.asyncio
async def test_receive_stores_nothing_it_could_not_audit(
    tmp_path: Path, keys: tuple[SM2PrivateKey, SM2PrivateKey]
) -> None:
    sender, recipient = keys
    fake = FakeGateway(tmp_path, recipient)
    fake.fail_audit = True
    frames = [sealed_frame(sender, recipient)]
    results = await receive(
        fake.as_gateway(), engine(), SOURCE, sender.public_key(), frames, [{"signature": "s"}]
    )
    assert results == [(503, {"code": "audit_unavailable", "message": "full"})]
    assert fake.inbox.stored == []
    assert fake.refusals == [("tr-1", "audit_unavailable")]
