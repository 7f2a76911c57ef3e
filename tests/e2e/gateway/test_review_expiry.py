"""A held transfer whose approval timeout passes is expired by the gateway's sweep (B5):
never delivered, its ciphertext deleted, late approvals refused, every step audited."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.audit_harness import wait_for
from support.gateway_harness import GatewayHarness

PATIENT = {"patient": {"name": "Somchai Jaidee", "bloodType": "O+"}}


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[GatewayHarness]:
    h = GatewayHarness(tmp_path, {"cn-nanning": "CN", "th-rayong": "TH"})
    try:
        for node in ("cn-nanning", "th-rayong"):
            h.start_gateway(node, gateway={"reviewSweepSeconds": 0.2})
        yield h
    finally:
        h.close()


def in_review(h: GatewayHarness) -> list[int]:
    links = h.call("th-rayong", "GET", "/v1/links")[1]["items"]
    return [b["transfers"]["inReview"] for b in links if b["kind"] == "link"]


def test_unapproved_transfer_expires_and_is_never_delivered(pair: GatewayHarness) -> None:
    status, held = pair.transfer("th-rayong", "cn-nanning", "internal", ["health"], [PATIENT])
    assert status == 202, held
    tid = held["id"]
    # One approval of the two needed arrives in time; it is not enough.
    status, answer = pair.approve("th-rayong", tid, "hub-compliance-office")
    assert (status, answer["state"]) == (200, "Held"), answer
    assert in_review(pair) == [1]

    # The deadline is the policy's approval timeout (72h for health-review). The CRD allows
    # no less than 1h, so the test moves this transfer's deadline in the agent's own store
    # to 1.5 s from now; the sweep and the approval check read it from there.
    db = pair.root / "th-rayong" / "gateway" / "held.db"
    with sqlite3.connect(db, timeout=10) as conn:
        created, expires = conn.execute(
            "SELECT created, expires FROM held WHERE id = ?", (tid,)
        ).fetchone()
        assert abs(expires - created - 72 * 3600) < 5
        deadline = time.time() + 1.5
        conn.execute("UPDATE held SET expires = ? WHERE id = ?", (deadline, tid))

    def state() -> str:
        return str(pair.call("th-rayong", "GET", f"/v1/reviews/{tid}")[1]["state"])

    wait_for(lambda: state() == "Expired", 10, f"{tid} Expired", step=0.1)
    assert time.time() >= deadline  # not before its deadline
    view = pair.call("th-rayong", "GET", f"/v1/reviews/{tid}")[1]
    assert view["reason"] == "approval timeout passed"

    # The approval that would have completed it comes too late.
    status, answer = pair.approve("th-rayong", tid, "recipient-data-protection-officer")
    assert (status, answer["code"]) == (410, "expired"), answer

    # Nothing crossed, and nothing will: the ciphertext is gone from the sandbox.
    assert pair.inbox("cn-nanning", tid)[0] == 404
    assert pair.audit_actions("cn-nanning", tid) == []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        sealed, core = conn.execute("SELECT sealed, core FROM held WHERE id = ?", (tid,)).fetchone()
    assert (sealed, core) == (None, None)
    assert in_review(pair) == [0]

    actions = pair.audit_actions("th-rayong", tid)
    assert actions[:3] == ["transfer.requested", "transfer.queued", "transfer.protected"]
    assert "transfer.expired" in actions and "transfer.delivered" not in actions
    assert actions.index("transfer.approved") < actions.index("transfer.expired")
    assert actions[-1] == "transfer.approval_refused"
    events = pair.audit_events("th-rayong")
    expired = next(
        e for e in events.values() if e["subject"] == tid and e["action"] == "transfer.expired"
    )
    assert (expired["actor"], expired["decision"]) == ("gateway", "expired")
    refused = [e for e in events.values() if e["action"] == "transfer.approval_refused"]
    assert json.loads(refused[-1]["detail"])["code"] == "expired"
