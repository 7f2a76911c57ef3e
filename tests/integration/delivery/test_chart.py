"""The Helm chart against a real kube-apiserver: lint, schema, server-side dry-run, install and
uninstall, and the operator's Pod under the `restricted` Pod Security Standard."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from trustspace.localk8s import LocalCluster

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "trustspace"
Helm = Callable[..., subprocess.CompletedProcess[str]]
EDGE = ("--set", "mode=edge", "--set", "edge.namespaces={a,b}")


@pytest.fixture
def helm(k8s_bin: Path, cluster: LocalCluster, tmp_path: Path) -> Iterator[Helm]:
    """Run the pinned helm against the session's cluster, with its state in tmp_path."""
    env = {
        **cluster.env(),
        "HELM_CACHE_HOME": str(tmp_path / "helm-cache"),
        "HELM_CONFIG_HOME": str(tmp_path / "helm-config"),
        "HELM_DATA_HOME": str(tmp_path / "helm-data"),
    }

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(k8s_bin / "helm"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if check:
            assert result.returncode == 0, f"helm {' '.join(args)}: {result.stderr}"
        return result

    yield run


def _release() -> str:
    return f"r{secrets.token_hex(3)}"  # fullname: r<hex>-trustspace (cluster-scoped names too)


def _docs(rendered: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(rendered) if d]


def _component(doc: dict[str, Any]) -> str | None:
    labels = doc["metadata"].get("labels") or {}
    return labels.get("app.kubernetes.io/component")


@pytest.mark.parametrize("extra", [(), EDGE], ids=["hub", "edge"])
def test_helm_lint(helm: Helm, extra: tuple[str, ...]) -> None:
    result = helm("lint", "--strict", str(CHART), *extra)
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ("operator.replicas=two", "/operator/replicas"),
        ("mode=spoke", "/mode"),
        ("metrics.port=http", "/metrics/port"),
        ("networkPolicy.enabled=maybe", "/networkPolicy/enabled"),
        ("operatr.replicas=1", "additional properties 'operatr' not allowed"),
    ],
)
def test_schema_rejects_wrong_values(helm: Helm, override: str, complaint: str) -> None:
    for command in ("lint", "template"):
        result = helm(command, str(CHART), "--set", override, check=False)
        assert result.returncode != 0, f"helm {command} accepted {override}"
        assert complaint in result.stdout + result.stderr


def test_schema_covers_every_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert schema["additionalProperties"] is False

    def walk(node: dict[str, Any], sub: dict[str, Any], path: str) -> None:
        for key, value in node.items():
            assert key in sub.get("properties", {}), f"values.yaml {path}{key} has no schema"
            child = sub["properties"][key]
            if isinstance(value, dict) and "properties" in child:
                walk(value, child, f"{path}{key}.")

    walk(values, schema, "")


@pytest.mark.parametrize("extra", [(), EDGE], ids=["hub", "edge"])
def test_template_applies_server_side(
    helm: Helm, cluster: LocalCluster, namespace: str, crds: list[str], extra: tuple[str, ...]
) -> None:
    release = _release()
    if extra:  # dry-run creates no namespaces: bind in the (existing) test namespace
        extra = ("--set", "mode=edge", "--set", f"edge.namespaces={{{namespace}}}")
    rendered = helm(
        "template", release, str(CHART), "-n", namespace,
        "--set", "metrics.serviceMonitor.enabled=false", *extra,
    ).stdout  # fmt: skip
    docs = _docs(rendered)
    kinds = sorted({d["kind"] for d in docs})
    collector = sorted(d["kind"] for d in docs if _component(d) == "collector")
    if extra:
        assert kinds == [
            "ClusterRole",
            "ClusterRoleBinding",
            "Namespace",
            "RoleBinding",
            "ServiceAccount",
        ]
        assert collector == []  # an edge cluster ships to the hub's collector
    else:
        assert kinds == [
            "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment", "NetworkPolicy",
            "PersistentVolumeClaim", "PodDisruptionBudget", "Role", "RoleBinding", "Service",
            "ServiceAccount",
        ]  # fmt: skip
        assert collector == [
            "ConfigMap", "Deployment", "NetworkPolicy", "PersistentVolumeClaim", "Role",
            "RoleBinding", "Service", "ServiceAccount",
        ]  # fmt: skip
        (operator,) = [d for d in docs if d["kind"] == "Deployment" and _component(d) == "operator"]
        args = operator["spec"]["template"]["spec"]["containers"][0]["args"]
        assert f"--collector-url=https://trustspace-collector.{namespace}.svc:8443" in args
        assert "--collector-tls-secret=trustspace-collector-tls" in args
    result = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered)
    assert result.stdout.count("(server dry run)") == len(_docs(rendered))


def test_install_creates_everything_and_uninstall_removes_it(
    helm: Helm, cluster: LocalCluster, namespace: str, crds: list[str]
) -> None:
    release = _release()
    full = f"{release}-trustspace"
    namespaced = [
        f"deployment/{full}-operator",
        f"deployment/{full}-collector",
        f"serviceaccount/{full}-collector",
        f"role/{full}-collector",
        f"rolebinding/{full}-collector",
        f"configmap/{full}-collector",
        "service/trustspace-collector",
        f"networkpolicy/{full}-collector",
        f"serviceaccount/{full}-operator",
        f"service/{full}-operator-metrics",
        f"poddisruptionbudget/{full}-operator",
        f"networkpolicy/{full}-operator",
        f"role/{full}-leader",
        f"rolebinding/{full}-leader",
    ]
    cluster_scoped = [f"clusterrole/{full}-operator", f"clusterrolebinding/{full}-operator"]
    helm("install", release, str(CHART), "-n", namespace, "--skip-crds")
    try:
        listed = cluster.kubectl("-n", namespace, "get", *namespaced, "-o", "name").stdout
        assert len(listed.split()) == len(namespaced)
        listed = cluster.kubectl("get", *cluster_scoped, "-o", "name").stdout
        assert len(listed.split()) == len(cluster_scoped)
        deployment = json.loads(
            cluster.kubectl("-n", namespace, "get", namespaced[0], "-o", "json").stdout
        )
        pod = deployment["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == f"{full}-operator"
        assert pod["containers"][0]["image"] == "ghcr.io/trustspace/trustspace-operator:0.1.0"
    finally:
        helm("uninstall", release, "-n", namespace, "--wait", "--timeout", "60s")
    for objects, scope in ((namespaced, ("-n", namespace)), (cluster_scoped, ())):
        result = cluster.kubectl(*scope, "get", *objects, "--ignore-not-found", "-o", "name")
        assert result.stdout.strip() == ""
    # The collector's audit record is evidence: an uninstall keeps its volume claim.
    kept = cluster.kubectl("-n", namespace, "get", f"pvc/{full}-collector-data", "-o", "name")
    assert kept.stdout.strip() == f"persistentvolumeclaim/{full}-collector-data"


def _pod(helm: Helm, namespace: str, component: str) -> dict[str, Any]:
    rendered = helm("template", _release(), str(CHART), "-n", namespace).stdout
    (deployment,) = [
        d for d in _docs(rendered) if d["kind"] == "Deployment" and _component(d) == component
    ]
    template = deployment["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{component}-pss", "namespace": namespace, **template["metadata"]},
        "spec": template["spec"],
    }


def _create_dry_run(cluster: LocalCluster, pod: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        "create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False
    )


@pytest.mark.parametrize("component", ["operator", "collector"])
def test_pods_meet_the_restricted_pod_security_standard(
    helm: Helm, cluster: LocalCluster, namespace: str, component: str
) -> None:
    # A Deployment's template only draws warnings; a bare Pod is rejected when it violates.
    cluster.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    pod = _pod(helm, namespace, component)
    container = pod["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    result = _create_dry_run(cluster, pod)
    assert result.returncode == 0, result.stderr

    # The same check rejects a Pod that breaks the standard, so it is really enforced here.
    bad = json.loads(json.dumps(pod))
    bad["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    del bad["spec"]["containers"][0]["securityContext"]["capabilities"]
    result = _create_dry_run(cluster, bad)
    assert result.returncode != 0
    assert 'violates PodSecurity "restricted:' in result.stderr


def _rendered(helm: Helm, *values: str) -> list[dict[str, Any]]:
    return _docs(helm("template", "r", str(CHART), "-n", "sys", *values).stdout)


def _one(docs: list[dict[str, Any]], kind: str, component: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind and _component(d) == component]
    return doc


def test_collector_values_shape_what_is_rendered(helm: Helm) -> None:
    # Off: no collector objects, and the operator is not asked to issue its pair.
    docs = _rendered(helm, "--set", "collector.enabled=false")
    assert [d for d in docs if _component(d) == "collector"] == []
    args = _one(docs, "Deployment", "operator")["spec"]["template"]["spec"]["containers"][0]
    assert not [a for a in args["args"] if a.startswith("--collector-")]

    # kind: agents in other clusters dial a NodePort on the hub's address, in the data space's
    # namespace; the pair is issued for that URL.
    url = "https://172.18.0.2:30440"
    docs = _rendered(
        helm, "--set", "collector.dataSpace.namespace=space", "--set", "collector.url=" + url,
        "--set", "collector.service.type=NodePort", "--set", "collector.service.nodePort=30440",
    )  # fmt: skip
    service = _one(docs, "Service", "collector")
    assert service["metadata"]["namespace"] == "space"
    assert service["spec"]["ports"][0]["nodePort"] == 30440
    operator = _one(docs, "Deployment", "operator")["spec"]["template"]["spec"]["containers"][0]
    assert f"--collector-url={url}" in operator["args"]
    config = yaml.safe_load(_one(docs, "ConfigMap", "collector")["data"]["collector.yaml"])
    assert config["statusNamespace"] == "space"
    assert config["statusSink"] == "kubernetes"

    # PostgreSQL: no volume claim, the password from a Secret, never in the ConfigMap.
    docs = _rendered(
        helm, "--set", "collector.storage.type=postgres",
        "--set", "collector.storage.postgres.url=postgresql://collector@db/audit",
        "--set", "collector.storage.postgres.passwordSecret.name=db",
    )  # fmt: skip
    assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    pod = _one(docs, "Deployment", "collector")["spec"]["template"]["spec"]
    (env,) = [e for e in pod["containers"][0]["env"] if e["name"] == "PGPASSWORD"]
    assert env["valueFrom"]["secretKeyRef"] == {"name": "db", "key": "password"}
    config = yaml.safe_load(_one(docs, "ConfigMap", "collector")["data"]["collector.yaml"])
    assert config["databaseUrl"] == "postgresql://collector@db/audit"
    assert "database" not in config
    missing = helm(
        "template", "r", str(CHART), "--set", "collector.storage.type=postgres", check=False
    )
    assert "collector.storage.postgres.url is required" in missing.stderr

    # Your own pair: its CA goes to the operator (--collector-ca-file), nothing is issued.
    ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    docs = _rendered(
        helm, "--set", "collector.tls.operatorIssued=false",
        "--set-string", "collector.tls.caCert=" + ca,
    )  # fmt: skip
    operator = _one(docs, "Deployment", "operator")["spec"]["template"]["spec"]["containers"][0]
    assert "--collector-ca-file=/etc/trustspace-operator/collector-ca/ca.crt" in operator["args"]
    assert not [a for a in operator["args"] if a.startswith("--collector-tls-secret")]
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-ca")]
    assert cm["data"]["ca.crt"] == ca
