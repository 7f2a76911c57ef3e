"""The data circuit breaker (B8) on real gateways: trips, refuses, probes, recovers, resets."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.audit_harness import TRUSTSPACE, wait_for
from support.gateway_harness import GatewayHarness
from trustspace.audit.auth import sign_request

NODES = {"cn-nanning": "CN", "sg-singapore": "SG", "vn-hanoi": "VN"}
PERSONAL = {"customer": {"name": "Tan", "phone": "+6591234567"}}


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHarness]:
    h = GatewayHarness(tmp_path_factory.mktemp("breaker"), NODES)
    try:
        h.start_collector()
        for node in NODES:
            h.start_gateway(node)
        yield h
    finally:
        h.close()


def link_status(h: GatewayHarness, node: str, name: str, kind: str = "link") -> dict[str, object]:
    _, links = h.call(node, "GET", "/v1/links")
    return next(i for i in links["items"] if i["name"] == name and i["kind"] == kind)


def hub_link_reports(h: GatewayHarness, link: str) -> list[dict[str, object]]:
    if not h.status_file.exists():
        return []
    rows = [json.loads(line) for line in h.status_file.read_text().splitlines()]
    return [r for r in rows if r.get("type") == "link" and r["link"] == link]


def test_denied_burst_trips_link_then_probe_closes_it(trio: GatewayHarness) -> None:
    link = "sg-singapore-to-cn-nanning"
    for i in range(5):  # threshold 5 in 1m (test bundle); each from another caller
        status, answer = trio.transfer(
            "sg-singapore", "cn-nanning", "internal", ["personal"], [PERSONAL], caller=f"c{i}"
        )
        assert (status, answer["code"]) == (403, "denied")
    cb = link_status(trio, "sg-singapore", link)["circuitBreaker"]
    assert cb["state"] == "Open" and cb["reason"] == "DeniedBurst" and cb["trips"] == 1
    assert "resumeAt" in cb and "trippedAt" in cb
    # Even an allowed flow on the tripped link is refused while it is open.
    status, answer = trio.transfer("sg-singapore", "cn-nanning", "internal", ["logistics"])
    assert (status, answer["code"]) == (503, "circuit_open")
    assert answer["breaker"]["reason"] == "DeniedBurst"
    # The hub hears of the trip at once, not at the next periodic report.
    wait_for(
        lambda: any(r["status"]["state"] == "Tripped" for r in hub_link_reports(trio, link)),
        2,
        "Tripped at the hub",
    )
    assert "breaker.tripped" in trio.audit_actions("sg-singapore", f"link/{link}")

    # After the 2 s cool-down one probe goes through and closes the breaker.
    def probe() -> bool:
        s, _ = trio.transfer("sg-singapore", "cn-nanning", "internal", ["logistics"])
        return s == 201

    wait_for(probe, 10, "a successful probe", step=0.5)
    cb = link_status(trio, "sg-singapore", link)["circuitBreaker"]
    assert cb["state"] == "Closed" and cb["trips"] == 1
    wait_for(
        lambda: hub_link_reports(trio, link)[-1]["status"]["state"] == "Established",
        5,
        "Established at the hub",
    )


def test_caller_breaker_is_separate_from_the_link(trio: GatewayHarness) -> None:
    for _ in range(5):
        trio.transfer(
            "sg-singapore", "vn-hanoi", "internal", ["personal"], [PERSONAL], caller="scraper"
        )
    status, answer = trio.transfer(
        "sg-singapore", "vn-hanoi", "internal", ["logistics"], caller="scraper"
    )
    assert (status, answer["code"]) == (429, "caller_circuit_open")
    # The link tripped too (the same five denials), so reset it and see the caller stay cut.
    trio.call("sg-singapore", "POST", "/v1/links/sg-singapore-to-vn-hanoi/reset")
    status, _ = trio.transfer(
        "sg-singapore", "vn-hanoi", "internal", ["logistics"], caller="honest"
    )
    assert status == 201
    status, answer = trio.transfer(
        "sg-singapore", "vn-hanoi", "internal", ["logistics"], caller="scraper"
    )
    assert status == 429


def test_invalid_signatures_trip_the_destination_and_manual_reset(trio: GatewayHarness) -> None:
    import ssl
    import urllib.error
    import urllib.request

    ctx = ssl.create_default_context(cafile=str(trio.ca))
    url = f"https://127.0.0.1:{trio.inbound_ports['cn-nanning']}/v1/inbound"
    for _ in range(3):  # default threshold: 3 invalid signatures in 10m
        headers = sign_request(
            "POST", "/v1/inbound", b"TSX1-other", "vn-hanoi", trio.node_keys["vn-hanoi"]
        )
        req = urllib.request.Request(
            url,
            data=b"TSX1",
            method="POST",
            headers={
                **headers,
                "Content-Type": "application/vnd.trustspace.transfer",
            },
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, context=ctx, timeout=10)  # noqa: S310
        assert err.value.code == 401
    link = "vn-hanoi-to-cn-nanning"
    cb = link_status(trio, "cn-nanning", link)["circuitBreaker"]
    assert cb["state"] == "Open" and cb["reason"] == "InvalidSignatures"
    # Genuine transfers are refused by the destination while its breaker is open.
    status, answer = trio.transfer("vn-hanoi", "cn-nanning", "internal", ["logistics"])
    assert (status, answer["destinationCode"]) == (502, "caller_circuit_open") or (
        status,
        answer["destinationCode"],
    ) == (502, "circuit_open")
    # `trustspace links reset` (the CLI) closes both breakers on the hub's gateway.
    for kind in ("link", "caller"):
        name = link if kind == "link" else "vn-hanoi"
        out = subprocess.run(
            [
                TRUSTSPACE,
                "links",
                "reset",
                name,
                "--kind",
                kind,
                "--agent",
                trio.agent_url("cn-nanning"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "TRUSTSPACE_AGENT_TOKEN": trio.token("operator")},
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert "Closed" in out.stdout
    status, answer = trio.transfer("vn-hanoi", "cn-nanning", "internal", ["logistics"])
    assert status == 201, answer
    assert "breaker.reset" in trio.audit_actions("cn-nanning", f"link/{link}")
    resets = [e for e in trio.audit_events("cn-nanning").values() if e["action"] == "breaker.reset"]
    assert {e["actor"] for e in resets} == {"operator"}


def test_backpressure_refuses_transfers_and_delivers_nothing(tmp_path: Path) -> None:
    h = GatewayHarness(tmp_path, {"cn-nanning": "CN", "vn-hanoi": "VN"})
    try:
        # No collector: nothing is ever acknowledged, so the 64 KiB store fills up.
        h.start_gateway("cn-nanning")
        h.start_gateway("vn-hanoi", storeMaxBytes=64 * 1024)
        for i in range(200):
            status, _ = h.post_events("vn-hanoi", [f"filler-{i}-{j}" for j in range(20)])
            if status != 201:
                break
        status, answer = h.transfer("vn-hanoi", "cn-nanning", "internal", ["logistics"])
        assert (status, answer["code"]) == (503, "audit_unavailable"), answer
        _, inbox = h.call("cn-nanning", "GET", "/v1/inbox")
        assert inbox["items"] == []
    finally:
        h.close()
