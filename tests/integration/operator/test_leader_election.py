"""Two operator replicas: one acts; kill it and the standby takes over."""

from __future__ import annotations

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
