"""The hub's operator provisions a remote node with exactly the identity the edge chart makes.

On kind the edges went Degraded with `403 ... cannot get resource "namespaces"`: the edge
chart's RBAC lacked a rule the operator uses, and no test had ever run the operator on that
identity (the others give it the edge's admin kubeconfig). Here the chart is rendered in edge
mode, applied to a real edge control plane, and its ServiceAccount's token is all the hub
holds for that cluster.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import yaml

from support.operator import OperatorRunner, apply, condition, node_manifest, wait_for
from trustspace.kube import Kube
from trustspace.kube import kinds as k
from trustspace.localk8s import LocalCluster

ROOT = Path(__file__).resolve().parents[3]
EDGE_NS = "ts-chart-edge"
SYSTEM_NS = "trustspace-system"


def _edge_chart(k8s_bin: Path, edge: LocalCluster, tmp_path: Path) -> None:
    rendered = subprocess.run(
        [
            str(k8s_bin / "helm"), "template", "trustspace", str(ROOT / "charts" / "trustspace"),
            "-n", SYSTEM_NS, "--set", "mode=edge", "--set", f"edge.namespaces={{{EDGE_NS}}}",
        ],
        capture_output=True, text=True, timeout=120, check=True,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    ).stdout  # fmt: skip
    edge.kubectl("create", "namespace", SYSTEM_NS, check=False)
    edge.kubectl("apply", "-f", "-", input=rendered)


def _token_kubeconfig(edge: LocalCluster) -> bytes:
    token = edge.kubectl(
        "-n", SYSTEM_NS, "create", "token", "trustspace-hub-operator", "--duration=1h"
    ).stdout.strip()  # fmt: skip
    admin = yaml.safe_load(edge.kubeconfig.read_text())
    cluster = admin["clusters"][0]["cluster"]
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "edge", "cluster": cluster}],
        "users": [{"name": "hub-operator", "user": {"token": token}}],
        "contexts": [{"name": "edge", "context": {"cluster": "edge", "user": "hub-operator"}}],
        "current-context": "edge",
    }
    return yaml.safe_dump(doc).encode()


def test_remote_node_on_the_edge_charts_identity_is_provisioned_not_degraded(
    cluster: LocalCluster,
    fleet: dict[str, LocalCluster],
    kube: Kube,
    namespace: str,
    operator: OperatorRunner,
    k8s_bin: Path,
    tmp_path: Path,
) -> None:
    edge = fleet["edge-2"]
    _edge_chart(k8s_bin, edge, tmp_path)
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "edge-chart-kubeconfig", "namespace": namespace},
            "data": {"kubeconfig": base64.b64encode(_token_kubeconfig(edge)).decode()},
        }
    )
    operator.start()
    apply(
        cluster,
        node_manifest(
            "my-kuantan",
            namespace,
            jurisdiction="MY",
            placement={
                "mode": "Remote",
                "kubeconfigSecretRef": {"name": "edge-chart-kubeconfig"},
                "namespace": EDGE_NS,
            },
        ),
    )

    def settled() -> dict[str, Any] | None:
        body = kube.get(k.DATASPACENODE, "my-kuantan", namespace)
        keyed, degraded = condition(body, "KeyReady"), condition(body, "Degraded")
        if degraded and degraded["status"] == "True":
            raise AssertionError(f"Degraded on the edge chart's identity: {degraded['message']}")
        return body if keyed and keyed["status"] == "True" and degraded else None

    body = wait_for("provisioned on the edge chart's identity", settled, timeout=90)
    assert condition(body, "Degraded")["status"] == "False"  # type: ignore[index]
    edge_kube = Kube.from_kubeconfig(str(edge.kubeconfig))
    for kind, name in [
        (k.STATEFUL_SET, "my-kuantan-agent"),
        (k.NETWORK_POLICY, "my-kuantan-agent"),
        (k.SECRET, "my-kuantan-sm2-key"),
    ]:
        assert edge_kube.get(kind, name, EDGE_NS) is not None, f"{kind.kind} {name} missing"
    cluster.kubectl("delete", "dsn", "my-kuantan", "-n", namespace, "--timeout=60s")
