"""The happy path end to end: agent -> collector, heartbeat, status, audit verify."""

from __future__ import annotations

import json

from support.audit_harness import Harness, wait_for


def test_events_reach_the_hub_verified(harness: Harness) -> None:
    harness.start_collector()
    harness.start_agent()
    for i in range(10):
        status, body = harness.post_events("edge-my", [f"smoke-{i}-{j}" for j in range(100)])
        assert status == 201, body
    wait_for(lambda: harness.hub_last_seq("edge-my") == 1000, 30, "hub to hold 1000 events")
    assert harness.hub_subjects("edge-my") == [
        f"smoke-{i}-{j}" for i in range(10) for j in range(100)
    ]
    result = harness.audit_verify()
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["events"] == 1000

    def heartbeat_and_status_written() -> bool:
        if not harness.status_file.exists():
            return False
        lines = [json.loads(x) for x in harness.status_file.read_text().splitlines()]
        kinds = {x["type"] for x in lines}
        return {"heartbeat", "audit", "AuditStreaming"} <= kinds

    wait_for(heartbeat_and_status_written, 15, "heartbeat and audit status in the sink")
