"""Who may call a gateway's local API (``trustspace_agent.gateway.callers``): bearer tokens from the
callers file, never a name the caller merely claims; every refusal a precise 4xx and an
audit event."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.gateway_harness import LOGISTICS_TRANSFER, GatewayHarness

NODES = {"cn-nanning": "CN", "vn-hanoi": "VN"}


def refusals(h: GatewayHarness, node: str, action: str) -> list[dict[str, Any]]:
    events = h.audit_events(node).values()
    return [json.loads(e["detail"]) for e in events if e["action"] == action]


@pytest.mark.parametrize(
    ("name", "headers", "status", "code", "field"),
    [
        ("no token", {}, 401, "missing_credentials", "Authorization"),
        (
            "basic auth",
            {"Authorization": "Basic dGVzdHM6eA=="},
            401,
            "malformed_credentials",
            "Authorization",
        ),
        (
            "empty bearer",
            {"Authorization": "Bearer "},
            401,
            "malformed_credentials",
            "Authorization",
        ),
        (
            "unknown token",
            {"Authorization": "Bearer not-a-token"},
            401,
            "unknown_caller",
            "Authorization",
        ),
        (
            "claims only",
            {"X-Trustspace-Caller": "tests"},
            401,
            "missing_credentials",
            "Authorization",
        ),
    ],
)
def test_transfers_without_a_valid_token_are_refused_and_audited(
    pair: GatewayHarness,
    name: str,
    headers: dict[str, str],
    status: int,
    code: str,
    field: str,
) -> None:
    claimed = "claimed-" + name.replace(" ", "-")
    got, answer = pair.call(
        "vn-hanoi",
        "POST",
        "/v1/transfers",
        LOGISTICS_TRANSFER,
        {"X-Trustspace-Caller": claimed, **headers},
        auth=False,
    )
    assert (got, answer["code"], answer.get("field")) == (status, code, field), answer
    mine = [
        r
        for r in refusals(pair, "vn-hanoi", "transfer.rejected")
        if r.get("claimedCaller") in (claimed, headers.get("X-Trustspace-Caller"))
    ]
    assert [r["code"] for r in mine][-1:] == [code]
    assert mine[-1]["remote"] == "127.0.0.1"
    events = pair.audit_events("vn-hanoi").values()
    assert not [e for e in events if e["actor"] == claimed]  # a claim is never an actor


def test_the_token_names_the_caller_and_a_claim_must_agree(pair: GatewayHarness) -> None:
    status, answer = pair.call(
        "vn-hanoi", "POST", "/v1/transfers", LOGISTICS_TRANSFER, {"X-Trustspace-Caller": "exporter"}
    )
    assert status == 201, answer
    actors = {
        e["actor"] for e in pair.audit_events("vn-hanoi").values() if e["subject"] == answer["id"]
    }
    assert actors == {"exporter"}
    # exporter's token, someone else's name: refused, nothing decided or delivered.
    status, answer = pair.call(
        "vn-hanoi",
        "POST",
        "/v1/transfers",
        LOGISTICS_TRANSFER,
        {"X-Trustspace-Caller": "crm", "Authorization": "Bearer " + pair.token("exporter")},
    )
    assert (status, answer["code"], answer["field"]) == (
        403,
        "caller_mismatch",
        "X-Trustspace-Caller",
    )
    assert "exporter" in answer["message"]


def test_a_revoked_token_is_refused_within_a_second(pair: GatewayHarness) -> None:
    token = pair.token("temporary")
    auth = {"Authorization": "Bearer " + token}
    assert pair.call("vn-hanoi", "POST", "/v1/transfers", LOGISTICS_TRANSFER, auth)[0] == 201
    digests = yaml.safe_load(pair.callers_file.read_text())
    del digests["temporary"]
    pair.callers_file.write_text(yaml.safe_dump(digests))
    time.sleep(1.1)
    status, answer = pair.call("vn-hanoi", "POST", "/v1/transfers", LOGISTICS_TRANSFER, auth)
    assert (status, answer["code"]) == (401, "unknown_caller")


def test_the_inbox_and_link_resets_need_a_caller_too(pair: GatewayHarness) -> None:
    _, sent = pair.call("vn-hanoi", "POST", "/v1/transfers", LOGISTICS_TRANSFER)
    tid = sent["id"]
    for path in (f"/v1/inbox/{tid}", "/v1/inbox"):
        status, answer = pair.call("cn-nanning", "GET", path, auth=False)
        assert (status, answer["code"]) == (401, "missing_credentials")
    assert [r["code"] for r in refusals(pair, "cn-nanning", "inbox.read_refused")] == [
        "missing_credentials",
        "missing_credentials",
    ]
    status, got = pair.call(
        "cn-nanning", "GET", f"/v1/inbox/{tid}", None, {"X-Trustspace-Caller": "analyst"}
    )
    assert status == 200 and got["records"] == LOGISTICS_TRANSFER["records"]
    reads = [e for e in pair.audit_events("cn-nanning").values() if e["action"] == "inbox.read"]
    assert [(e["actor"], e["subject"]) for e in reads] == [("analyst", tid)]
    path = "/v1/links/vn-hanoi-to-cn-nanning/reset"
    status, answer = pair.call("vn-hanoi", "POST", path, auth=False)
    assert (status, answer["code"]) == (401, "missing_credentials")
    assert refusals(pair, "vn-hanoi", "breaker.reset_refused")[-1]["code"] == "missing_credentials"


def test_without_a_callers_file_only_anonymous_loopback_calls_are_served(
    tmp_path: Path,
) -> None:
    h = GatewayHarness(tmp_path, NODES)
    try:
        for node in NODES:
            h.start_gateway(node, gateway={"callerTokensFile": None})
        status, answer = h.call("vn-hanoi", "POST", "/v1/transfers", LOGISTICS_TRANSFER, auth=False)
        assert status == 201, answer
        actors = {
            e["actor"] for e in h.audit_events("vn-hanoi").values() if e["subject"] == answer["id"]
        }
        assert actors == {"local"}
        for headers, field in (
            ({"X-Trustspace-Caller": "crm"}, "X-Trustspace-Caller"),
            ({"Authorization": "Bearer " + h.token("tests")}, "Authorization"),
        ):
            status, answer = h.call(
                "vn-hanoi", "POST", "/v1/transfers", LOGISTICS_TRANSFER, headers, auth=False
            )
            assert (status, answer["code"], answer["field"]) == (
                401,
                "unverifiable_caller",
                field,
            ), answer
    finally:
        h.close()
