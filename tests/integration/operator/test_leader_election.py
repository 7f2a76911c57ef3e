"""Two operator replicas: one acts; kill it and the standby takes over."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

from support.operator import OperatorRunner, apply, node_manifest, wait_for
from trustspace.kube import Kube
from trustspace.kube import kinds as k
from trustspace.localk8s import LocalCluster

LEASE = {"TRUSTSPACE_LEASE_DURATION": "3"}


def _keyed(kube: Kube, ns: str, name: str) -> bool:
    body = kube.get(k.DATASPACENODE, name, ns) or {}
    return bool(((body.get("status") or {}).get("activeKey") or {}).get("keyId"))


def _holder(kube: Kube, ns: str) -> str | None:
    lease = kube.get(k.LEASE, "trustspace-operator", ns)
    return (lease or {}).get("spec", {}).get("holderIdentity")


def test_standby_takes_over_when_the_leader_dies(
    cluster: LocalCluster, kube: Kube, namespace: str, operator: OperatorRunner, tmp_path: Path
) -> None:
    args = ("--leader-elect", "--lease-namespace", namespace)
    operator.start(env=LEASE, args=args)
    leader = wait_for("a leader", lambda: _holder(kube, namespace))
    standby = OperatorRunner(cluster, [namespace], tmp_path / "standby")
    standby.workdir.mkdir()
    try:
        standby.start(env=LEASE, args=args)
        wait_for("standby waiting", lambda: "standing by" in standby.logs())
        apply(cluster, node_manifest("vn-hanoi", namespace))
        wait_for("the leader reconciles", lambda: _keyed(kube, namespace, "vn-hanoi"))
        assert _holder(kube, namespace) == leader

        operator.kill()
        new_leader = wait_for(
            "takeover", lambda: (h := _holder(kube, namespace)) != leader and h, timeout=30
        )
        assert new_leader != leader
        apply(cluster, node_manifest("th-rayong", namespace, jurisdiction="TH"))
        wait_for("the new leader reconciles", lambda: _keyed(kube, namespace, "th-rayong"))
        assert "leading as" in standby.logs()
    finally:
        standby.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthz(port: int) -> tuple[int, dict[str, object]]:
    url = f"http://127.0.0.1:{port}/healthz"
    with urllib.request.urlopen(url, timeout=2) as resp:
        body = resp.read()
        return resp.status, json.loads(body) if body.startswith(b"{") else {}


def test_a_standby_answers_its_liveness_probe_and_kopf_takes_the_port_when_it_leads(
    cluster: LocalCluster, kube: Kube, namespace: str, operator: OperatorRunner, tmp_path: Path
) -> None:
    """In a Pod the kubelet probes /healthz on both replicas: a standby that does not
    answer is killed every minute (seen on kind: one restart a minute on the second
    replica). The standby answers; once it leads, kopf's own endpoint answers there."""
    args = ("--leader-elect", "--lease-namespace", namespace)
    operator.start(env=LEASE, args=args)
    leader = wait_for("a leader", lambda: _holder(kube, namespace))
    port = _free_port()
    standby = OperatorRunner(cluster, [namespace], tmp_path / "standby")
    standby.workdir.mkdir()
    try:
        standby.start(env=LEASE, args=(*args, "--liveness-port", str(port)))
        wait_for("standby waiting", lambda: "standing by" in standby.logs())
        status, body = _healthz(port)
        assert (status, body) == (200, {"status": "standby"})
        operator.kill()
        wait_for("takeover", lambda: (h := _holder(kube, namespace)) != leader and h, timeout=30)
        wait_for("leading", lambda: "leading as" in standby.logs())

        def kopf_answers() -> bool:
            try:
                status, body = _healthz(port)
            except OSError:
                return False
            return status == 200 and body != {"status": "standby"}

        wait_for("kopf's /healthz on the same port", kopf_answers, timeout=30)
    finally:
        standby.stop()
