"""The operator works with exactly the chart's RBAC: everything it does, nothing more."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.operator import OperatorRunner, apply, condition, node_manifest, wait_empty, wait_for
from trustspace.kube import Kube
from trustspace.kube import kinds as k
from trustspace.localk8s import LocalCluster

CHART = Path(__file__).resolve().parents[3] / "charts" / "trustspace"
COMPONENT = "app.kubernetes.io/component"


def _rendered(k8s_bin: Path, namespace: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(k8s_bin / "helm"), "template", "rbac", str(CHART), "--namespace", namespace],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    # The operator's own rules only: the collector's identity is tested on its own
    # (tests/integration/delivery/test_collector_rbac.py).
    return [d for d in docs if (d["metadata"].get("labels") or {}).get(COMPONENT) != "collector"]


def _bind_to_user(docs: list[dict[str, Any]], user: str, suffix: str) -> list[dict[str, Any]]:
    """The chart's roles, bound to a client-certificate user instead of the ServiceAccount."""
    out = []
    for doc in docs:
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            doc["metadata"]["name"] += f"-{suffix}"
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] += f"-{suffix}"
        if doc["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            doc["subjects"] = [
                {"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}
            ]
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"):
            out.append(doc)
    return out


@pytest.fixture
def operator_user(cluster: LocalCluster, k8s_bin: Path, namespace: str) -> Any:
    user = f"trustspace-operator-{namespace[-6:]}"
    docs = _bind_to_user(_rendered(k8s_bin, namespace), user, namespace[-6:])
    assert {d["kind"] for d in docs} == {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    manifest = yaml.safe_dump_all(docs)
    cluster.kubectl("apply", "-f", "-", input=manifest)
    yield user, cluster.user_kubeconfig(user)
    cluster.kubectl("delete", "-f", "-", "--wait=false", input=manifest, check=False)


def test_operator_runs_on_the_chart_rbac_alone(
    cluster: LocalCluster, kube: Kube, namespace: str, operator: OperatorRunner, operator_user: Any
) -> None:
    _user, kubeconfig = operator_user
    operator.start(
        env={"KUBECONFIG": str(kubeconfig), "TRUSTSPACE_LEASE_DURATION": "5"},
        args=("--leader-elect", "--lease-namespace", namespace),
    )
    apply(cluster, node_manifest("cn-nanning", namespace, role="hub", jurisdiction="CN"))
    apply(cluster, node_manifest("vn-hanoi", namespace))
    for name in ("cn-nanning", "vn-hanoi"):
        wait_for(
            f"{name} keyed",
            lambda n=name: (
                (c := condition(kube.get(k.DATASPACENODE, n, namespace), "KeyReady"))
                and c["status"] == "True"
            ),
        )
    wait_for("trust bundle", lambda: kube.get(k.CONFIG_MAP, "trustspace-trust-bundle", namespace))
    kube.delete(k.SERVICE, "vn-hanoi-gateway", namespace)
    wait_for("drift repaired", lambda: kube.get(k.SERVICE, "vn-hanoi-gateway", namespace))
    kube.patch(
        k.DATASPACENODE,
        "vn-hanoi",
        {"metadata": {"annotations": {"trustspace.io/rotate-key": "x"}}},
        namespace,
    )
    wait_for(
        "rotated",
        lambda: ((kube.get(k.DATASPACENODE, "vn-hanoi", namespace) or {}).get("status") or {}).get(
            "previousKeys"
        ),
    )
    cluster.kubectl("delete", "dsn", "vn-hanoi", "-n", namespace, "--timeout=60s")
    wait_empty(
        "cleaned up",
        lambda: [
            n
            for n in ("vn-hanoi-agent", "vn-hanoi-sm2-key")
            if kube.get(k.STATEFUL_SET, n, namespace) or kube.get(k.SECRET, n, namespace)
        ],
    )
    logs = operator.logs().lower()
    assert "forbidden" not in logs, "the operator needed a permission the chart does not grant"
    lease = kube.get(k.LEASE, "trustspace-operator", namespace)
    assert lease is not None and lease["spec"]["holderIdentity"]


@pytest.mark.parametrize(
    "verb,resource",
    [
        ("create", "pods"),
        ("create", "pods/exec"),
        ("delete", "customresourcedefinitions.apiextensions.k8s.io"),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
        ("escalate", "roles.rbac.authorization.k8s.io"),
        ("bind", "clusterroles.rbac.authorization.k8s.io"),
        ("impersonate", "users"),
        ("delete", "dataspacenodes.trustspace.io"),
        ("create", "dataspacenodes.trustspace.io"),
        ("list", "nodes"),
        ("create", "deployments.apps"),
        ("update", "leases.coordination.k8s.io"),
    ],
)
def test_operator_cannot_do_more(
    cluster: LocalCluster, namespace: str, operator_user: Any, verb: str, resource: str
) -> None:
    user, _ = operator_user
    result = cluster.kubectl(
        "auth", "can-i", verb, resource, "--as", user, "-n", namespace, check=False
    )
    assert result.stdout.strip() == "no", f"{user} may {verb} {resource}"
