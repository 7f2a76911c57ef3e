"""Remote placement: a node provisioned in its own edge cluster, through outages and deletion."""

from __future__ import annotations

import base64
from typing import Any

from support.operator import (
    OperatorRunner,
    apply,
    condition,
    events_for,
    node_manifest,
    wait_empty,
    wait_for,
)
from trustspace.kube import Kube
from trustspace.kube import kinds as k
from trustspace.localk8s import LocalCluster

EDGE_NS = "ts-th-rayong"
REMOTE_OBJECTS = [
    (k.SERVICE_ACCOUNT, "th-rayong-agent"),
    (k.ROLE, "th-rayong-agent"),
    (k.ROLE_BINDING, "th-rayong-agent"),
    (k.CONFIG_MAP, "th-rayong-agent-config"),
    (k.STATEFUL_SET, "th-rayong-agent"),
    (k.SERVICE, "th-rayong-gateway"),
    (k.SECRET, "th-rayong-sm2-key"),
]


def _remote_node(ns: str) -> dict[str, Any]:
    return node_manifest(
        "th-rayong",
        ns,
        jurisdiction="TH",
        placement={
            "mode": "Remote",
            "kubeconfigSecretRef": {"name": "edge-kubeconfig"},
            "namespace": EDGE_NS,
        },
    )


def _kubeconfig_secret(edge: LocalCluster, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "edge-kubeconfig", "namespace": ns},
        "data": {"kubeconfig": base64.b64encode(edge.kubeconfig.read_bytes()).decode()},
    }


def _cond(kube: Kube, ns: str, type_: str) -> dict[str, Any] | None:
    return condition(kube.get(k.DATASPACENODE, "th-rayong", ns), type_)


def test_remote_node_lives_in_its_edge_cluster_and_survives_an_outage(
    cluster: LocalCluster,
    fleet: dict[str, LocalCluster],
    kube: Kube,
    namespace: str,
    operator: OperatorRunner,
) -> None:
    edge = fleet["edge-1"]
    edge_kube = Kube.from_kubeconfig(str(edge.kubeconfig))
    operator.start()
    apply(cluster, _remote_node(namespace))

    missing = wait_for("missing kubeconfig reported", lambda: _cond(kube, namespace, "Degraded"))
    assert missing["status"] == "True" and missing["reason"] == "KubeconfigSecretMissing"

    kube.create(_kubeconfig_secret(edge, namespace))
    wait_for(
        "KeyReady", lambda: (c := _cond(kube, namespace, "KeyReady")) and c["status"] == "True"
    )
    # Nothing in the hub owns the edge's objects: deleting the node takes the finalizer.
    body = kube.get(k.DATASPACENODE, "th-rayong", namespace)
    assert body is not None and body["metadata"]["finalizers"] == ["trustspace.io/cleanup"]
    for kind, name in REMOTE_OBJECTS:
        assert edge_kube.get(kind, name, EDGE_NS) is not None, f"{kind.kind} {name} not on the edge"
        # The private key exists only where the node runs.
        assert kube.get(kind, name, namespace) is None
    assert kube.get(k.SECRET, "th-rayong-sm2-key", EDGE_NS) is None
    created = edge_kube.get(k.NAMESPACE, EDGE_NS)
    assert (
        created["metadata"]["annotations"]["trustspace.io/created-for-node"]
        == f"{namespace}/th-rayong"
    )  # type: ignore[index]

    edge.stop()
    try:
        down = wait_for(
            "Degraded on outage",
            lambda: (c := _cond(kube, namespace, "Degraded")) and c["status"] == "True" and c,
        )
        assert down["reason"] == "RemoteClusterUnreachable"
        body = kube.get(k.DATASPACENODE, "th-rayong", namespace)
        assert body["status"]["phase"] == "Degraded"  # type: ignore[index]
        assert body["status"]["activeKey"]["keyId"]  # type: ignore[index]  # kept while degraded
    finally:
        edge.start()
    wait_for(
        "recovery",
        lambda: (c := _cond(kube, namespace, "Degraded")) and c["status"] == "False",
        timeout=90,
    )
    reasons = [e["reason"] for e in events_for(cluster, namespace, "th-rayong")]
    assert "RemoteClusterUnreachable" in reasons and "ClusterReachable" in reasons

    # Drift in the edge cluster is repaired by the periodic resync (no watch reaches it).
    edge_kube.delete(k.SERVICE, "th-rayong-gateway", EDGE_NS)
    wait_for(
        "remote drift repaired",
        lambda: edge_kube.get(k.SERVICE, "th-rayong-gateway", EDGE_NS),
        timeout=30,
    )

    cluster.kubectl("delete", "dsn", "th-rayong", "-n", namespace, "--timeout=60s")
    wait_empty(
        "remote objects removed",
        lambda: [f"{kd.kind}/{n}" for kd, n in REMOTE_OBJECTS if edge_kube.get(kd, n, EDGE_NS)],
    )
    wait_for(
        "namespace removed",
        lambda: (
            (edge_kube.get(k.NAMESPACE, EDGE_NS) or {"status": {"phase": "gone"}})["status"].get(
                "phase"
            )
            in ("Terminating", "gone")
        ),
    )
