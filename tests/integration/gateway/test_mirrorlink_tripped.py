"""A tripped gateway breaker shows on the MirrorLink within a second (B8), through the
collector's server-side apply on the status subresource, with an Event."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.audit_harness import wait_for
from support.gateway_harness import SAMPLES, GatewayHarness
from trustspace.kube import Kube
from trustspace.kube.kinds import MIRRORLINK
from trustspace.localk8s import LocalCluster

NODES = {"cn-nanning": "CN", "sg-singapore": "SG"}
LINK = "sg-singapore-to-cn-nanning"


@pytest.fixture
def pair(
    tmp_path: Path,
    cluster: LocalCluster,
    crds: list[str],
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[GatewayHarness]:
    cluster.kubectl("apply", "-n", namespace, "-f", str(SAMPLES / f"mirrorlink_{LINK}.yaml"))
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    h = GatewayHarness(tmp_path, NODES)
    try:
        h.start_collector(statusSink="kubernetes", statusNamespace=namespace)
        for node in NODES:
            h.start_gateway(node)
        yield h
    finally:
        h.close()


def mirrorlink(cluster: LocalCluster, namespace: str) -> Any:
    kube = Kube.from_kubeconfig(str(cluster.kubeconfig))
    try:
        return kube.get(MIRRORLINK, LINK, namespace)
    finally:
        kube.close()


def test_tripped_breaker_shows_on_the_mirrorlink(
    pair: GatewayHarness, cluster: LocalCluster, namespace: str
) -> None:
    record = {"customer": {"name": "Tan", "phone": "+6591234567"}}
    for i in range(4):
        status, _ = pair.transfer(
            "sg-singapore", "cn-nanning", "internal", ["personal"], [record], caller=f"c{i}"
        )
        assert status == 403
    status, _ = pair.transfer(
        "sg-singapore", "cn-nanning", "internal", ["personal"], [record], caller="c4"
    )
    crossed = time.monotonic()
    assert status == 403

    def tripped() -> bool:
        st = mirrorlink(cluster, namespace).get("status") or {}
        return bool(st.get("state") == "Tripped")

    wait_for(tripped, 5, "MirrorLink status Tripped", step=0.05)
    elapsed = time.monotonic() - crossed
    assert elapsed < 1.0, f"Tripped after {elapsed:.2f}s"
    obj = mirrorlink(cluster, namespace)
    st = obj["status"]
    assert st["circuitBreaker"]["reason"] == "DeniedBurst"
    assert st["circuitBreaker"]["trips"] == 1
    assert st["transfers"]["denied"] == 5
    managers = [m["manager"] for m in obj["metadata"]["managedFields"]]
    assert "trustspace-collector" in managers
    cond = next(c for c in st["conditions"] if c["type"] == "CircuitBreakerTripped")
    assert (cond["status"], cond["reason"]) == ("True", "DeniedBurst")
    assert "5 denied transfers" in cond["message"], cond
    printed = cluster.kubectl("get", "ml", LINK, "-n", namespace)
    header, row = printed.stdout.splitlines()[:2]
    assert "REASON" in header and "Tripped" in row and "DeniedBurst" in row, printed.stdout
    described = cluster.kubectl("describe", "ml", LINK, "-n", namespace).stdout
    assert "CircuitBreakerTripped" in described and "DeniedBurst" in described, described

    # The operator writes its own conditions with its own field manager; ours stays.
    from trustspace_operator.space.mirror_links import update_links

    kube = Kube.from_kubeconfig(str(cluster.kubeconfig))
    try:
        update_links(kube, namespace, [], [])
    finally:
        kube.close()
    types = {c["type"] for c in mirrorlink(cluster, namespace)["status"]["conditions"]}
    assert {"CircuitBreakerTripped", "Ready", "NodesReady"} <= types

    # After the cool-down (2 s in the test bundle) a good transfer is the probe that closes
    # the breaker, and the condition turns False.
    time.sleep(2.2)
    status, answer = pair.transfer("sg-singapore", "cn-nanning", "internal", ["logistics"])
    assert status == 201, answer

    def closed() -> bool:
        conds = (mirrorlink(cluster, namespace).get("status") or {}).get("conditions", [])
        c = next((c for c in conds if c["type"] == "CircuitBreakerTripped"), None)
        return c is not None and (c["status"], c["reason"]) == ("False", "BreakerClosed")

    wait_for(closed, 10, "CircuitBreakerTripped False after the probe")

    def event_raised() -> bool:
        out = cluster.kubectl("get", "events", "-n", namespace, "-o", "json")
        items = json.loads(out.stdout)["items"]
        return any(
            e["reason"] == "CircuitBreakerTripped" and e["involvedObject"]["name"] == LINK
            for e in items
        )

    wait_for(event_raised, 5, "CircuitBreakerTripped event")
