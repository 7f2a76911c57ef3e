"""The collector's status sink against a real API server: server-side apply on
``dataspacenodes/<n>/status`` with its own field manager, next to the operator's.

The operator (field manager ``trustspace-operator``) and the collector
(``trustspace-collector``) write different conditions of the same list-map; neither may
wipe the other's. The collector's writes are rate-limited whatever the event rate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from trustspace.api.constants import DATASPACENODE_KIND, GROUP, VERSION
from trustspace.kube import Kube, Obj
from trustspace.kube import kinds as k
from trustspace.localk8s import LocalCluster
from trustspace_operator.collector.node_reports import AuditProgress, Heartbeat, NodeUpdate
from trustspace_operator.collector.status_reporter import StatusReporter
from trustspace_operator.collector.status_sinks import FIELD_MANAGER, KubernetesSink

SAMPLE = Path(__file__).parents[3] / "config" / "samples" / "dataspacenode_sg-singapore.yaml"
NODE = "sg-singapore"
INTERVAL = 60.0
T0 = dt.datetime(2030, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
POLICY_HASH = "ab" * 32
TRUST_HASH = "cd" * 32


class Clocks:
    """Monotonic (rate limiting) and wall (condition times) clocks the test moves by hand."""

    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = T0

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += dt.timedelta(seconds=seconds)


@pytest.fixture
def kube(cluster: LocalCluster) -> Iterator[Kube]:
    client = Kube.from_kubeconfig(str(cluster.kubeconfig))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def node(kube: Kube, crds: list[str], namespace: str) -> Obj:
    obj = yaml.safe_load(SAMPLE.read_text())
    obj["metadata"]["namespace"] = namespace
    return kube.create(obj)


def operator_apply(kube: Kube, namespace: str, message: str) -> None:
    """What the operator's reconcile writes, with the operator's field manager."""
    stamp = T0.strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": DATASPACENODE_KIND,
        "metadata": {"name": NODE, "namespace": namespace},
        "status": {
            "phase": "Provisioning",
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": "KeyReady",
                    "status": "True",
                    "reason": "KeyIssued",
                    "message": message,
                    "lastTransitionTime": stamp,
                },
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "NotReady",
                    "message": "waiting for the agent",
                    "lastTransitionTime": stamp,
                },
            ],
        },
    }
    kube.request(
        "PATCH",
        k.DATASPACENODE.path(namespace, NODE) + "/status",
        query=[("fieldManager", "trustspace-operator"), ("force", "true")],
        body=body,
        content_type="application/apply-patch+yaml",
    )


def status_of(kube: Kube, namespace: str) -> Obj:
    obj = kube.get(k.DATASPACENODE, NODE, namespace)
    assert obj is not None
    status: Obj = obj.get("status") or {}
    return status


def condition(status: Obj, type_: str) -> Obj | None:
    return next((c for c in status.get("conditions", []) if c["type"] == type_), None)


def status_is(status: Obj, type_: str) -> str | None:
    found = condition(status, type_)
    return str(found["status"]) if found is not None else None


def warnings(kube: Kube, namespace: str) -> list[Obj]:
    return [
        e
        for e in kube.list(k.EVENT, namespace)
        if e["involvedObject"].get("name") == NODE and e.get("type") == "Warning"
    ]


def heartbeat(at: dt.datetime, last: int, acked: int, used: int, **extra: Any) -> Heartbeat:
    body = {
        "node": NODE,
        "lastSeq": last,
        "ackedSeq": acked,
        "backpressure": used >= 1000,
        "bufferUsedBytes": used,
        "bufferMaxBytes": 1000,
        **extra,
    }
    return Heartbeat.parse(json.dumps(body).encode(), at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def test_collector_and_operator_share_status(kube: Kube, node: Obj, namespace: str) -> None:
    asyncio.run(_scenario(kube, namespace))


async def _scenario(kube: Kube, namespace: str) -> None:
    clocks = Clocks()
    operator_apply(kube, namespace, "key k1 issued")
    sink = KubernetesSink(namespace, kube, clock=lambda: clocks.wall)
    reporter = StatusReporter(sink, INTERVAL, clock=lambda: clocks.mono, wall=lambda: clocks.wall)
    try:
        # 1. Heartbeat and audit progress: one apply, whatever the number of batches.
        reporter.heartbeat(
            NODE,
            heartbeat(
                clocks.wall,
                last=500,
                acked=0,
                used=100,
                policyBundle={"version": 3, "hash": POLICY_HASH},
                trustBundleHash=TRUST_HASH,
            ),
        )
        for seq in range(1, 501):  # 500 stored batches
            reporter.progress(NODE, AuditProgress(seq, "2030-01-01T11:59:58.5Z", 1.5))
            await reporter.streaming(NODE, True, "AuditStreaming", "batches verify")
        assert sink.writes == 0, "nothing is written before the flush"
        await reporter.flush()
        assert sink.writes == 1

        status = status_of(kube, namespace)
        key_ready = condition(status, "KeyReady")
        assert key_ready is not None and key_ready["message"] == "key k1 issued"
        assert condition(status, "Ready") is not None
        assert status["phase"] == "Provisioning", "the operator's fields stay"
        assert status["audit"] == {
            "lastSequence": 500,
            "lastEventTime": "2030-01-01T11:59:58Z",
            "lag": "1s",
            "bufferedRecords": 500,
        }
        assert status["lastHeartbeatTime"] == "2030-01-01T12:00:00Z"
        assert status["policyBundle"] == {
            "version": 3,
            "hash": POLICY_HASH,
            "appliedAt": "2030-01-01T12:00:00Z",
        }
        streaming = condition(status, "AuditStreaming")
        assert streaming is not None
        assert (streaming["status"], streaming["reason"]) == ("True", "AuditStreaming")
        assert streaming["lastTransitionTime"] == "2030-01-01T12:00:00Z"
        backpressure = condition(status, "AuditBackpressure")
        assert backpressure is not None
        assert (backpressure["status"], backpressure["reason"]) == ("False", "BufferOK")

        # Who owns what: the collector's manager has its fields and conditions only.
        obj = kube.get(k.DATASPACENODE, NODE, namespace)
        assert obj is not None
        # Status writes only: a manager may also own spec fields from creating the object.
        managers = {
            m["manager"]: m
            for m in obj["metadata"]["managedFields"]
            if m.get("subresource") == "status"
        }
        ours = json.dumps(managers[FIELD_MANAGER]["fieldsV1"])
        theirs = json.dumps(managers["trustspace-operator"]["fieldsV1"])
        assert '"k:{\\"type\\":\\"AuditStreaming\\"}"' in ours and "f:audit" in ours
        assert "KeyReady" not in ours and "f:phase" not in ours
        assert '"k:{\\"type\\":\\"KeyReady\\"}"' in theirs and "AuditStreaming" not in theirs

        # 2. The operator reconciles again: the collector's conditions survive.
        operator_apply(kube, namespace, "key k1 in use")
        status = status_of(kube, namespace)
        assert condition(status, "AuditStreaming") is not None
        assert condition(status, "AuditBackpressure") is not None
        assert status["audit"]["lastSequence"] == 500

        # 3. A failure soon after a write waits for the next flush (rate limit), and keeps
        # the time it was seen as its transition time ...
        clocks.advance(5)
        await reporter.streaming(NODE, False, "BadSignature", "batch signature does not verify")
        assert sink.writes == 1
        assert status_is(status_of(kube, namespace), "AuditStreaming") == "True"
        clocks.advance(INTERVAL)
        await reporter.flush()
        assert sink.writes == 2
        status = status_of(kube, namespace)
        streaming = condition(status, "AuditStreaming")
        assert streaming is not None
        assert (streaming["status"], streaming["reason"]) == ("False", "BadSignature")
        assert streaming["lastTransitionTime"] == "2030-01-01T12:00:05Z"
        assert condition(status, "KeyReady") is not None
        events = warnings(kube, namespace)
        assert [e["reason"] for e in events] == ["BadSignature"]
        assert events[0]["source"]["component"] == FIELD_MANAGER
        assert events[0]["involvedObject"]["kind"] == DATASPACENODE_KIND

        # ... and one a period after the last write goes out at once. Still False: the
        # transition time stays, the reason is the new one, and it gets its own Event.
        clocks.advance(INTERVAL)
        await reporter.streaming(NODE, False, "Gap", "hub holds seq 1..500; batch starts at 600")
        assert sink.writes == 3
        streaming = condition(status_of(kube, namespace), "AuditStreaming")
        assert streaming is not None
        assert (streaming["status"], streaming["reason"]) == ("False", "Gap")
        assert streaming["lastTransitionTime"] == "2030-01-01T12:00:05Z"
        assert sorted(e["reason"] for e in warnings(kube, namespace)) == ["BadSignature", "Gap"]

        # 4. The buffer fills: AuditBackpressure turns True; a flood of heartbeats and
        # progress is still one write per flush.
        clocks.advance(INTERVAL)
        for i in range(50):
            reporter.heartbeat(NODE, heartbeat(clocks.wall, last=900 + i, acked=500, used=950))
        await reporter.flush()
        assert sink.writes == 4
        await reporter.flush()
        assert sink.writes == 4, "no change, no write"
        status = status_of(kube, namespace)
        backpressure = condition(status, "AuditBackpressure")
        assert backpressure is not None
        assert (backpressure["status"], backpressure["reason"]) == ("True", "BufferFilling")
        assert "95%" in backpressure["message"]
        assert status["audit"]["bufferedRecords"] == 449
        assert status["policyBundle"]["hash"] == POLICY_HASH, "kept: owned fields are all sent"

        # 5. A restarted collector reads the object once and keeps what it finds: the
        # transition time of an unchanged condition and the audit progress.
        restarted = KubernetesSink(namespace, kube, clock=lambda: clocks.wall)
        clocks.advance(INTERVAL)
        restarted.write(NODE, NodeUpdate(heartbeat=heartbeat(clocks.wall, 950, 949, 10)))
        status = status_of(kube, namespace)
        streaming = condition(status, "AuditStreaming")
        assert streaming is not None and streaming["reason"] == "Gap"
        assert streaming["lastTransitionTime"] == "2030-01-01T12:00:05Z"
        assert status["audit"]["lastSequence"] == 500
        assert status["audit"]["bufferedRecords"] == 1
        assert status_is(status, "AuditBackpressure") == "False"
        assert condition(status, "KeyReady") is not None

        # 6. Streaming recovers: True, with a new transition time and no Warning.
        clocks.advance(INTERVAL)
        await reporter.streaming(NODE, True, "AuditStreaming", "batches verify")
        await reporter.flush()
        streaming = condition(status_of(kube, namespace), "AuditStreaming")
        assert streaming is not None and streaming["status"] == "True"
        assert streaming["lastTransitionTime"] == clocks.wall.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert len(warnings(kube, namespace)) == 2
    finally:
        reporter.close()
