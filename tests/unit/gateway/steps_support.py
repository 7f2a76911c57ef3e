"""Builders for the gateway step tests: a small compiled policy bundle, transfer inputs, key
pairs, and a fake of the few Gateway attributes the delivery and hold steps use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from trustspace.audit.event import EventFields
from trustspace.crypto import SM2PrivateKey
from trustspace.policy import FieldProtection, PolicyEngine, compile_bundle, load_profiles
from trustspace_agent.gateway.breaker import BreakerBoard, Trip
from trustspace_agent.gateway.core import Gateway
from trustspace_agent.gateway.delivery import Outcome
from trustspace_agent.gateway.transfer_input import TransferInput

SOURCE, DESTINATION = "vn-1", "sg-1"
LINK = f"{SOURCE}-to-{DESTINATION}"


def _node(name: str, jurisdiction: str) -> dict[str, Any]:
    return {
        "apiVersion": "trustspace.io/v1alpha1",
        "kind": "DataSpaceNode",
        "metadata": {"name": name, "labels": {}},
        "spec": {
            "role": "hub" if jurisdiction == "CN" else "edge",
            "jurisdiction": jurisdiction,
            "endpoint": f"https://{name}.example",
        },
    }


def _policy(rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "trustspace.io/v1alpha1",
        "kind": "TransferPolicy",
        "metadata": {"name": "flows"},
        "spec": {
            "priority": 100,
            "sources": {"selector": {}},
            "destinations": {"selector": {}},
            "rules": rules,
        },
    }


RULES = [
    {"name": "trade", "action": "allow", "classifications": ["internal"], "categories": ["trade"]},
    {
        "name": "personal",
        "action": "allow",
        "classifications": ["internal"],
        "categories": ["personal"],
        "protections": {
            "desensitisation": [
                {"field": "name", "method": "mask", "mask": {"keepFirst": 1, "keepLast": 0}}
            ]
        },
    },
    {
        "name": "health",
        "action": "review",
        "classifications": ["internal"],
        "categories": ["health"],
        "approval": {
            "approvers": [{"name": "officer", "kind": "PlatformOperator"}],
            "timeout": "1h",
        },
    },
    {"name": "genes", "action": "deny", "classifications": ["internal"], "categories": ["genetic"]},
]


def engine() -> PolicyEngine:
    nodes = [_node("cn-hub", "CN"), _node(SOURCE, "VN"), _node(DESTINATION, "SG")]
    return PolicyEngine(compile_bundle([_policy(RULES)], nodes, load_profiles(), version=1).bundle)


def transfer_input(
    category: str = "trade",
    records: list[dict[str, Any]] | None = None,
    data: bytes | None = None,
) -> TransferInput:
    return TransferInput(
        source=SOURCE,
        destination=DESTINATION,
        classification="internal",
        categories=(category,),
        purpose=None,
        certifications=(),
        link=LINK,
        dataset=None,
        records=records,
        data=data,
    )


@dataclass
class FakeReviews:
    added: list[tuple[Any, ...]] = field(default_factory=list)

    async def call(self, fn: Any) -> Any:
        return fn(self)

    def add(self, *args: Any) -> None:
        self.added.append(args)


@dataclass
class FakePeers:
    outcome: Outcome
    sent: list[tuple[str, bytes]] = field(default_factory=list)

    async def deliver(self, url: str, frame: bytes) -> Outcome:
        self.sent.append((url, frame))
        return self.outcome


@dataclass
class FakeConfig:
    peers: dict[str, str]


class FakeGateway:
    """What :mod:`trustspace_agent.gateway.dispatch` reads of a Gateway, recorded."""

    def __init__(self, tmp_path: Path, outcome: Outcome, peers: dict[str, str]) -> None:
        self.board = BreakerBoard(tmp_path / "breakers.json")
        self.config = FakeConfig(peers)
        self.peers = FakePeers(outcome)
        self.reviews = FakeReviews()
        self.recorded: list[EventFields] = []
        self.trips: list[Trip | None] = []

    async def record(self, events: list[EventFields]) -> None:
        self.recorded.extend(events)

    async def on_trip(self, trip: Trip | None, actor: str) -> None:
        self.trips.append(trip)

    def as_gateway(self) -> Gateway:
        return cast(Gateway, self)


def no_pseudonyms(link: str) -> Callable[[FieldProtection], bytes]:
    def key_for(p: FieldProtection) -> bytes:
        raise AssertionError("no policy here pseudonymises")

    return key_for


def key_pair() -> tuple[SM2PrivateKey, SM2PrivateKey]:
    """The source's and the destination's keys."""
    return SM2PrivateKey.generate(), SM2PrivateKey.generate()
