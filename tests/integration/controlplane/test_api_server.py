"""The local control plane is a real Kubernetes API: objects, watches, CRDs, kubectl, helm."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest
from kubernetes import client, watch

from trustspace.localk8s import LocalCluster

THROWAWAY_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.throwaway.trustspace.io
spec:
  group: throwaway.trustspace.io
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [size]
              properties:
                size: {type: integer, minimum: 1}
"""


def test_namespace_and_configmap_round_trip(cluster: LocalCluster, namespace: str) -> None:
    api = client.CoreV1Api(cluster.api_client())
    assert api.read_namespace(namespace).status.phase == "Active"
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm"), data={"k": "v"})
    api.create_namespaced_config_map(namespace, body)
    assert api.read_namespaced_config_map("cm", namespace).data == {"k": "v"}


def test_watch_sees_an_event_created_after_it_starts(cluster: LocalCluster, namespace: str) -> None:
    api = client.CoreV1Api(cluster.api_client())
    rv = api.list_namespaced_config_map(namespace).metadata.resource_version
    seen: list[tuple[str, str]] = []

    def consume() -> None:
        w = watch.Watch()
        for event in w.stream(
            api.list_namespaced_config_map, namespace, resource_version=rv, timeout_seconds=20
        ):
            seen.append((event["type"], event["object"].metadata.name))
            if event["object"].metadata.name == "watched":
                w.stop()

    watcher = threading.Thread(target=consume)
    watcher.start()
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="watched"), data={"a": "1"})
    api.create_namespaced_config_map(namespace, body)
    watcher.join(timeout=30)
    assert ("ADDED", "watched") in seen


def test_crd_and_custom_object_validated_by_the_server(
    cluster: LocalCluster, namespace: str
) -> None:
    cluster.kubectl("apply", "-f", "-", input=THROWAWAY_CRD)
    cluster.kubectl("wait", "--for=condition=established", "crd/widgets.throwaway.trustspace.io")
    good = {
        "apiVersion": "throwaway.trustspace.io/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "namespace": namespace},
        "spec": {"size": 3},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(good))
    got = json.loads(cluster.kubectl("get", "widget", "w1", "-n", namespace, "-o", "json").stdout)
    assert got["spec"] == {"size": 3}

    bad = dict(good, metadata={"name": "w2", "namespace": namespace}, spec={"size": 0})
    result = cluster.kubectl("apply", "-f", "-", input=json.dumps(bad), check=False)
    assert result.returncode != 0
    assert "spec.size" in result.stderr


def test_rbac_is_enforced_for_other_identities(cluster: LocalCluster, namespace: str) -> None:
    nobody = cluster.user_kubeconfig("nobody")
    denied = cluster.kubectl("get", "configmaps", "-n", namespace, kubeconfig=nobody, check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()
    cluster.kubectl(
        "create", "role", "reader", "--verb=get,list", "--resource=configmaps", "-n", namespace
    )
    cluster.kubectl(
        "create", "rolebinding", "reader", "--role=reader", "--user=nobody", "-n", namespace
    )
    allowed = cluster.kubectl("get", "configmaps", "-n", namespace, kubeconfig=nobody)
    assert allowed.returncode == 0


def test_kubectl_and_helm_from_the_script_work(cluster: LocalCluster, k8s_bin: Path) -> None:
    names = cluster.kubectl("get", "ns", "-o", "name").stdout.split()
    assert "namespace/kube-system" in names
    version = subprocess.run(
        [str(k8s_bin / "helm"), "version", "--short"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("v3.")
    listed = subprocess.run(
        [str(k8s_bin / "helm"), "list", "-A", "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("NAME")


def test_server_version_is_the_pinned_release(cluster: LocalCluster) -> None:
    info = client.VersionApi(cluster.api_client()).get_code()
    assert (info.major, info.minor) == ("1", "34")
    assert info.git_version.startswith("v1.34.")


@pytest.mark.parametrize(
    "resource", ["deployments.apps", "statefulsets.apps", "leases.coordination.k8s.io"]
)
def test_built_in_apis_are_served(cluster: LocalCluster, resource: str) -> None:
    out = cluster.kubectl("api-resources", "-o", "name").stdout.split()
    assert resource in out
