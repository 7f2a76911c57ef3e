"""What the operator renders for a node: the agent can read its config; names and labels hold."""

from __future__ import annotations

from typing import Any

import yaml

from trustspace.api.dataspacenode import DataSpaceNode
from trustspace_agent.config import AgentConfig
from trustspace_operator import render


def _node(**spec: Any) -> DataSpaceNode:
    base: dict[str, Any] = {
        "role": "edge",
        "jurisdiction": "VN",
        "endpoint": "https://gw.example:8443",
    }
    base.update(spec)
    return DataSpaceNode.from_body(
        {"metadata": {"name": "vn-hanoi", "namespace": "space", "uid": "u-1"}, "spec": base}
    )


def test_agent_config_is_what_the_agent_reads() -> None:
    node = _node(agent={"auditBufferSize": "2Gi", "heartbeatInterval": "15s"})
    cm = render.agent_config(node, "https://collector.example:8443")
    config = AgentConfig.model_validate(yaml.safe_load(cm["data"]["agent.yaml"]))
    assert config.node == "vn-hanoi"
    assert config.heartbeat_seconds == 15.0
    assert config.store_max_bytes == 2 * 1024**3 * 8 // 10
    assert str(config.key_file).startswith(render.KEY_DIR)
    assert config.collector_url == "https://collector.example:8443"


def test_every_object_is_labelled_and_owned_locally() -> None:
    node = _node()
    objs = render.desired_objects(node, image="img:1", collector_url="https://c")
    assert [o["kind"] for o in objs] == [
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "StatefulSet",
        "Service",
    ]
    for obj in objs:
        labels = obj["metadata"]["labels"]
        assert labels[render.NODE_LABEL] == "vn-hanoi"
        assert labels["app.kubernetes.io/managed-by"] == "trustspace-operator"
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "u-1"


def test_remote_or_other_namespace_objects_are_not_owner_referenced() -> None:
    remote = _node(placement={"mode": "Remote", "kubeconfigSecretRef": {"name": "kc"}})
    elsewhere = _node(placement={"namespace": "agents"})
    for node in (remote, elsewhere):
        for obj in render.desired_objects(node, image="i", collector_url="https://c"):
            assert "ownerReferences" not in obj["metadata"]
    assert render.target_namespace(elsewhere) == "agents"


def test_agent_role_is_least_privilege() -> None:
    role = render.role(_node())
    for rule in role["rules"]:
        assert rule["verbs"] == ["get", "watch"]
        assert rule["resourceNames"], "every rule is limited to named objects"
    assert {r["resources"][0] for r in role["rules"]} == {"secrets", "configmaps"}


def test_gateway_off_means_no_service_and_restricted_pod() -> None:
    node = _node(capabilities={"gateway": {"enabled": False}, "evidence": {"enabled": False}})
    kinds = [o["kind"] for o in render.desired_objects(node, image="i", collector_url="https://c")]
    assert "Service" not in kinds
    sts = render.stateful_set(_node(), "img")
    pod = sts["spec"]["template"]["spec"]
    ctx = pod["containers"][0]["securityContext"]
    assert ctx["readOnlyRootFilesystem"] and ctx["runAsNonRoot"]
    assert not ctx["allowPrivilegeEscalation"]
    assert pod["automountServiceAccountToken"] is False
