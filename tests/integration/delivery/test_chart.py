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
    kinds = sorted({d["kind"] for d in _docs(rendered)})
    if extra:
        assert kinds == ["ClusterRole", "Namespace", "RoleBinding", "ServiceAccount"]
    else:
        assert kinds == [
            "ClusterRole", "ClusterRoleBinding", "Deployment", "NetworkPolicy",
            "PodDisruptionBudget", "Role", "RoleBinding", "Service", "ServiceAccount",
        ]  # fmt: skip
    result = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered)
    assert result.stdout.count("(server dry run)") == len(_docs(rendered))


def test_install_creates_everything_and_uninstall_removes_it(
    helm: Helm, cluster: LocalCluster, namespace: str, crds: list[str]
) -> None:
    release = _release()
    full = f"{release}-trustspace"
    namespaced = [
        f"deployment/{full}-operator",
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


def _operator_pod(helm: Helm, namespace: str) -> dict[str, Any]:
    rendered = helm("template", _release(), str(CHART), "-n", namespace).stdout
    (deployment,) = [d for d in _docs(rendered) if d["kind"] == "Deployment"]
    template = deployment["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "operator-pss", "namespace": namespace, **template["metadata"]},
        "spec": template["spec"],
    }


def _create_dry_run(cluster: LocalCluster, pod: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        "create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False
    )


def test_operator_pod_meets_the_restricted_pod_security_standard(
    helm: Helm, cluster: LocalCluster, namespace: str
) -> None:
    # A Deployment's template only draws warnings; a bare Pod is rejected when it violates.
    cluster.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    pod = _operator_pod(helm, namespace)
    result = _create_dry_run(cluster, pod)
    assert result.returncode == 0, result.stderr

    # The same check rejects a Pod that breaks the standard, so it is really enforced here.
    bad = json.loads(json.dumps(pod))
    bad["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    del bad["spec"]["containers"][0]["securityContext"]["capabilities"]
    result = _create_dry_run(cluster, bad)
    assert result.returncode != 0
    assert 'violates PodSecurity "restricted:' in result.stderr
