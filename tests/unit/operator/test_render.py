"""What the operator renders for a node: the agent can read its config; names and labels hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from trustspace.api.dataspacenode import DataSpaceNode
from trustspace_agent.config import AgentConfig
from trustspace_operator import render
from trustspace_operator.peers import GatewayView


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
        "NetworkPolicy",
    ]
    for obj in objs:
        labels = obj["metadata"]["labels"]
        assert labels[render.NODE_LABEL] == "vn-hanoi"
        assert labels["app.kubernetes.io/managed-by"] == "trustspace-operator"
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    # The audit buffer's PVC is collected with the StatefulSet, so with the node.
    sts = next(o for o in objs if o["kind"] == "StatefulSet")
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
    assert render.collected_with_node("Local", None, "space")
    assert render.collected_with_node("Local", "space", "space")


def test_remote_or_other_namespace_objects_are_not_owner_referenced() -> None:
    remote = _node(placement={"mode": "Remote", "kubeconfigSecretRef": {"name": "kc"}})
    elsewhere = _node(placement={"namespace": "agents"})
    for node in (remote, elsewhere):
        for obj in render.desired_objects(node, image="i", collector_url="https://c"):
            assert "ownerReferences" not in obj["metadata"]
    assert render.target_namespace(elsewhere) == "agents"
    # Those nodes need the operator's finalizer to clean up (handlers.needs_cleanup).
    assert not render.collected_with_node("Remote", None, "space")
    assert not render.collected_with_node("Local", "agents", "space")


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


def test_gateway_section_names_mounted_files_and_link_peers() -> None:
    node = _node()
    view = GatewayView({"cn-nanning": "https://gw.cn-nanning.example:8443"}, ("pseudo-key",))
    objs = render.desired_objects(node, image="img", collector_url="https://c", gateway=view)
    cm = next(o for o in objs if o["kind"] == "ConfigMap")
    config = AgentConfig.model_validate(yaml.safe_load(cm["data"]["agent.yaml"]))
    gw = config.gateway
    assert gw is not None
    assert gw.peers == {"cn-nanning": "https://gw.cn-nanning.example:8443"}
    sts = next(o for o in objs if o["kind"] == "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}

    def volume_of(path: Path) -> dict[str, Any]:
        parent = next(m for m in mounts if str(path).startswith(m + "/"))
        return volumes[mounts[parent]]

    # Every file the agent reads comes from the volume that holds it.
    assert volume_of(gw.tls_key_file)["secret"]["secretName"] == "vn-hanoi-gateway-tls"
    assert volume_of(config.key_file)["secret"]["secretName"] == "vn-hanoi-sm2-key"
    for trust_file in (gw.policy_bundle_file, gw.trust_bundle_file, gw.hub_public_key_file):
        assert volume_of(trust_file)["configMap"]["name"] == render.TRUST_BUNDLE_CONFIGMAP
    assert gw.peer_ca_file is not None and gw.approver_keys_file is not None
    assert gw.peer_ca_file.name == render.GATEWAY_CA_KEY
    assert gw.approver_keys_file.name == render.APPROVERS_KEY
    assert gw.secrets_dir is not None
    pseudo = volume_of(gw.secrets_dir / "pseudo-key" / "sm3-hmac-key")
    assert pseudo["secret"] == {"secretName": "pseudo-key", "optional": True, "defaultMode": 0o400}
    assert str(gw.state_dir).startswith(render.DATA_DIR)
    # The Service sends peers to the HTTPS inbound port; probes hit the API's /healthz.
    container = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"api": config.listen_port, "gateway": gw.inbound_port}
    assert container["readinessProbe"]["httpGet"]["port"] == "api"
    svc = next(o for o in objs if o["kind"] == "Service")
    assert svc["spec"]["ports"][0]["targetPort"] == "gateway"
    assert "vn-hanoi-gateway-tls" in render.role(node)["rules"][0]["resourceNames"]


def test_a_changed_peer_rolls_the_agents() -> None:
    node = _node()

    def digest(view: GatewayView) -> str:
        sts = render.desired_objects(node, image="i", collector_url="https://c", gateway=view)[4]
        return str(
            sts["spec"]["template"]["metadata"]["annotations"][render.CONFIG_HASH_ANNOTATION]
        )

    assert digest(GatewayView()) == digest(GatewayView())
    assert digest(GatewayView()) != digest(GatewayView({"cn-nanning": "https://x:8443"}))


def test_no_gateway_means_no_gateway_section() -> None:
    node = _node(capabilities={"gateway": {"enabled": False}, "evidence": {"enabled": False}})
    settings = render.agent_settings(node, "https://c")
    assert "gateway" not in settings
    AgentConfig.model_validate(settings)


def test_network_policy_admits_peers_and_declared_callers_only() -> None:
    node = _node(capabilities={"gateway": {"enabled": True, "callers": ["erp", "crm"]}})
    policy = render.network_policy(node)
    assert policy["spec"]["podSelector"]["matchLabels"] == render.selector(node)
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    gateway, api = policy["spec"]["ingress"]
    # Peers come from other clusters' nodes: any source, but only to the gateway port.
    assert gateway == {"ports": [{"port": "gateway", "protocol": "TCP"}]}
    assert api["ports"] == [{"port": "api", "protocol": "TCP"}]
    (peer,) = api["from"]
    assert set(peer) == {"podSelector"}  # this namespace only
    (expr,) = peer["podSelector"]["matchExpressions"]
    assert expr == {"key": render.CALLER_LABEL, "operator": "In", "values": ["crm", "erp"]}


def test_network_policy_without_gateway_or_callers_admits_nothing() -> None:
    node = _node(capabilities={"gateway": {"enabled": False}})
    policy = render.network_policy(node)
    # An empty ingress list with policyType Ingress: every connection is refused.
    assert policy["spec"]["ingress"] == []
