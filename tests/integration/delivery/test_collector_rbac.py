"""The collector works on exactly the identity the chart gives it: its ServiceAccount's token
and Role. A real collector process, fed by a real agent, writes DataSpaceNode audit status,
MirrorLink status and an Event with that token; the token can do nothing else."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.audit_harness import Harness, wait_for
from support.operator import node_manifest
from trustspace.kube import Kube, Obj
from trustspace.kube import kinds as k
from trustspace.localk8s import LocalCluster
from trustspace_operator.collector.collector_config import CollectorConfig

CHART = Path(__file__).resolve().parents[3] / "charts" / "trustspace"
NODE = "edge-my"
LINK = f"{NODE}-to-hub"
COMPONENT = "app.kubernetes.io/component"


def _collector_docs(k8s_bin: Path, namespace: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(k8s_bin / "helm"), "template", "rbac", str(CHART), "--namespace", namespace],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    return [d for d in docs if (d["metadata"].get("labels") or {}).get(COMPONENT) == "collector"]


def _token_kubeconfig(cluster: LocalCluster, namespace: str, account: str, out: Path) -> Path:
    """The cluster's kubeconfig with the ServiceAccount's token as the only credential."""
    token = cluster.kubectl(
        "-n", namespace, "create", "token", account, "--duration=1h"
    ).stdout.strip()
    doc = yaml.safe_load(cluster.kubeconfig.read_text())
    for user in doc["users"]:
        user["user"] = {"token": token}
    out.write_text(yaml.safe_dump(doc))
    out.chmod(0o600)
    return out


@pytest.fixture
def chart_identity(
    cluster: LocalCluster, k8s_bin: Path, namespace: str, tmp_path: Path
) -> tuple[str, Path, dict[str, Any]]:
    """The chart's collector ServiceAccount, Role and RoleBinding, applied; (account,
    kubeconfig with its token, the chart's collector.yaml)."""
    docs = _collector_docs(k8s_bin, namespace)
    rbac = [d for d in docs if d["kind"] in ("ServiceAccount", "Role", "RoleBinding")]
    assert sorted(d["kind"] for d in rbac) == ["Role", "RoleBinding", "ServiceAccount"]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(rbac))
    (account,) = [d["metadata"]["name"] for d in rbac if d["kind"] == "ServiceAccount"]
    (config_map,) = [d for d in docs if d["kind"] == "ConfigMap"]
    config = yaml.safe_load(config_map["data"]["collector.yaml"])
    CollectorConfig.model_validate(config)  # what the Pod would load
    kubeconfig = _token_kubeconfig(cluster, namespace, account, tmp_path / "collector.kubeconfig")
    return account, kubeconfig, config


@pytest.fixture
def harness(
    tmp_path: Path,
    cluster: LocalCluster,
    crds: list[str],
    namespace: str,
    chart_identity: tuple[str, Path, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Harness]:
    _, kubeconfig, config = chart_identity
    cluster.kubectl("apply", "-f", "-", input=json.dumps(node_manifest(NODE, namespace)))
    link = {
        "apiVersion": "trustspace.io/v1alpha1",
        "kind": "MirrorLink",
        "metadata": {"name": LINK, "namespace": namespace},
        "spec": {
            "source": {"name": NODE},
            "destination": {"name": "hub"},
            "datasets": [
                {"name": "tracks", "classification": "internal", "categories": ["logistics"]}
            ],
            "policyRefs": [{"name": "logistics-auto"}],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(link))
    # The collector process finds its credentials in $KUBECONFIG (in a Pod: the token file).
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    h = Harness(tmp_path, nodes=(NODE,))
    try:
        h.start_collector(
            statusSink=config["statusSink"],
            statusNamespace=config["statusNamespace"],
            statusIntervalSeconds=0.5,
        )
        h.start_agent(NODE)
        yield h
    finally:
        h.close()


def _get(cluster: LocalCluster, kind: k.Kind, name: str, namespace: str) -> Obj | None:
    kube = Kube.from_kubeconfig(str(cluster.kubeconfig))
    try:
        return kube.get(kind, name, namespace)
    finally:
        kube.close()


def test_collector_writes_status_and_events_with_the_charts_identity(
    cluster: LocalCluster, namespace: str, harness: Harness
) -> None:
    status, answer = harness.post_events(NODE, [f"s{i}" for i in range(5)])
    assert status == 201, answer

    def audited() -> Obj | None:
        obj = _get(cluster, k.DATASPACENODE, NODE, namespace) or {}
        st = obj.get("status") or {}
        ok = (st.get("audit") or {}).get("lastSequence", 0) >= 5 and st.get("lastHeartbeatTime")
        return obj if ok else None

    wait_for(lambda: audited() is not None, 60, "audit status written by the collector")
    obj = audited()
    assert obj is not None
    managers = {m["manager"] for m in obj["metadata"]["managedFields"]}
    assert "trustspace-collector" in managers
    types = {c["type"] for c in obj["status"].get("conditions", [])}
    assert "AuditStreaming" in types

    # A link report from the node: the link's status, and an Event for the tripped breaker.
    report = {
        "links": [
            {
                "name": LINK,
                "transfers": {"allowed": 1, "denied": 5, "inReview": 0},
                "bytesTransferred": 10,
                "circuitBreaker": {"state": "Open", "reason": "DeniedBurst", "message": "5 denied"},
            }
        ]
    }
    code, answer, _ = harness.hub_request(
        "POST", "/v1/links/status", json.dumps(report).encode(), NODE
    )
    assert (code, answer) == (200, {"written": 1})
    link = _get(cluster, k.MIRRORLINK, LINK, namespace)
    assert link is not None and link["status"]["state"] == "Tripped"

    def event_posted() -> bool:
        out = cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
        return any(
            e["reason"] == "CircuitBreakerTripped" and e["involvedObject"]["name"] == LINK
            for e in json.loads(out)["items"]
        )

    wait_for(event_posted, 10, "the collector's CircuitBreakerTripped Event")
    log = (harness.root / "collector.log").read_text(errors="replace")
    assert "Forbidden" not in log and "403" not in log, log[-3000:]


@pytest.mark.parametrize(
    ("verb", "resource", "allowed"),
    [
        ("get", "dataspacenodes.trustspace.io", True),
        ("patch", "dataspacenodes.trustspace.io/status", True),
        ("patch", "mirrorlinks.trustspace.io/status", True),
        ("create", "events", True),
        # Nothing more: it reads no Secrets (its key is mounted), changes no spec, lists nothing.
        ("get", "secrets", False),
        ("list", "dataspacenodes.trustspace.io", False),
        ("patch", "dataspacenodes.trustspace.io", False),
        ("update", "dataspacenodes.trustspace.io/status", False),
        ("get", "mirrorlinks.trustspace.io", False),
        ("patch", "transferpolicies.trustspace.io/status", False),
        ("delete", "events", False),
        ("create", "pods", False),
        ("get", "configmaps", False),
    ],
)
def test_collector_identity_is_no_more_than_needed(
    cluster: LocalCluster,
    namespace: str,
    chart_identity: tuple[str, Path, dict[str, Any]],
    verb: str,
    resource: str,
    allowed: bool,
) -> None:
    account = f"system:serviceaccount:{namespace}:{chart_identity[0]}"
    kind, _, sub = resource.partition("/")
    subresource = ("--subresource", sub) if sub else ()
    for ns in (namespace, "default"):  # its Role binds in the data space's namespace only
        result = cluster.kubectl(
            "auth", "can-i", verb, kind, *subresource, "--as", account, "-n", ns, check=False
        )
        expected = "yes" if allowed and ns == namespace else "no"
        assert result.stdout.strip() == expected, f"{account} {verb} {resource} in {ns}"
