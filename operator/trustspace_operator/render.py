"""What a mirror node needs in its cluster, as plain Kubernetes objects (B1).

Pure functions of the DataSpaceNode: no I/O, so drift detection compares against exactly
what was rendered, and tests can read the objects without a cluster.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from trustspace.api.common import parse_duration, parse_quantity
from trustspace.api.constants import GROUP
from trustspace.api.dataspacenode import DataSpaceNode, PlacementMode
from trustspace.crypto import sm3
from trustspace.kube import Obj
from trustspace_operator.peers import GatewayView

MANAGED_BY = "trustspace-operator"
NODE_LABEL = f"{GROUP}/node"
NODE_NAMESPACE_LABEL = f"{GROUP}/node-namespace"
TRUST_BUNDLE_CONFIGMAP = "trustspace-trust-bundle"
TRUST_BUNDLE_KEY = "bundle.json"
#: Key in the same ConfigMap holding the signed policy bundle envelope (space/policy_compiler.py).
POLICY_BUNDLE_KEY = "policy-bundle.json"
#: Key in the trust-bundle ConfigMap holding the CA of the hub collector's TLS certificate.
COLLECTOR_CA_KEY = "collector-ca.crt"
#: Keys in the same ConfigMap: the CA of the gateways' serving certificates (tls/gateway.py)
#: and the approvers' SM2 public keys (``{name: [PEM, ...]}``) that count for reviews.
GATEWAY_CA_KEY = "gateway-ca.crt"
APPROVERS_KEY = "approvers.yaml"
#: The agent's local API (transfers, reviews, /healthz, /metrics): for the node's own apps.
API_PORT = 8780
#: The gateway's HTTPS inbound port, where peers deliver; the gateway Service points here.
GATEWAY_PORT = 8443
CONFIG_DIR = "/etc/trustspace"
KEY_DIR = "/var/run/trustspace/key"
BUNDLE_DIR = "/var/run/trustspace/trust"
TLS_DIR = "/var/run/trustspace/gateway-tls"
SECRETS_DIR = "/var/run/trustspace/secrets"
CALLERS_DIR = "/var/run/trustspace/callers"
#: Key of the callers Secret: ``{caller: [SM3 hex of its token]}``, the agent's
#: ``callerTokensFile``; and of each caller's own Secret: the bearer token itself.
CALLERS_KEY = "callers.yaml"
TOKEN_KEY = "token"  # noqa: S105 - a key's name
#: Label of a caller's token Secret: which caller it is (stale ones are found by it).
CALLER_LABEL = f"{GROUP}/caller"
DATA_DIR = "/var/lib/trustspace"
#: Pod-template annotation with the config's digest: a changed config rolls the agents.
CONFIG_HASH_ANNOTATION = f"{GROUP}/config-hash"


@dataclass(frozen=True)
class Names:
    """Object names derived from the node's name (one place, so nothing else guesses)."""

    node: str

    @property
    def agent(self) -> str:
        return f"{self.node}-agent"

    @property
    def key_secret(self) -> str:
        return f"{self.node}-sm2-key"

    @property
    def agent_config(self) -> str:
        return f"{self.node}-agent-config"

    @property
    def gateway(self) -> str:
        return f"{self.node}-gateway"

    @property
    def gateway_tls(self) -> str:
        return f"{self.node}-gateway-tls"

    @property
    def callers(self) -> str:
        return f"{self.node}-callers"

    def caller_token(self, caller: str) -> str:
        return f"{self.node}-caller-{caller}"


def callers(node: DataSpaceNode) -> list[str]:
    """The apps that get a token for the agent's local API (none without a gateway)."""
    gateway = node.spec.capabilities.gateway
    return sorted(gateway.callers or []) if gateway.enabled else []


def target_namespace(node: DataSpaceNode) -> str:
    ns = node.spec.placement.namespace or node.namespace
    if not ns:
        raise ValueError("DataSpaceNode has no namespace")
    return ns


def labels(node: DataSpaceNode) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "trustspace-agent",
        "app.kubernetes.io/instance": node.name,
        "app.kubernetes.io/component": "mirror-node",
        "app.kubernetes.io/part-of": "trustspace",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        NODE_LABEL: node.name,
        NODE_NAMESPACE_LABEL: node.namespace,
    }


def selector(node: DataSpaceNode) -> dict[str, str]:
    return {"app.kubernetes.io/name": "trustspace-agent", NODE_LABEL: node.name}


def collected_with_node(mode: str, namespace: str | None, node_namespace: str) -> bool:
    """Whether the node's objects carry owner references, so that the garbage collector
    removes them with the node: only where the API allows them, in the node's own cluster
    and namespace. Elsewhere the operator's finalizer removes them (nodes.cleanup)."""
    return mode == PlacementMode.LOCAL and (namespace or node_namespace) == node_namespace


def owner_reference(node: DataSpaceNode) -> list[Obj]:
    """Owner references only where the API allows them: same cluster, same namespace."""
    if not collected_with_node(node.spec.placement.mode, target_namespace(node), node.namespace):
        return []
    return [
        {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "DataSpaceNode",
            "name": node.name,
            "uid": node.metadata.get("uid"),
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def _meta(node: DataSpaceNode, name: str, namespaced: bool = True) -> Obj:
    meta: Obj = {"name": name, "labels": labels(node)}
    if namespaced:
        meta["namespace"] = target_namespace(node)
        owners = owner_reference(node)
        if owners:
            meta["ownerReferences"] = owners
    return meta


def namespace(node: DataSpaceNode) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": _meta(node, target_namespace(node), False),
    }


def service_account(node: DataSpaceNode) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(node, Names(node.name).agent),
        # The agent needs no API token: its key, config and trust bundle arrive as volumes.
        "automountServiceAccountToken": False,
    }


def role(node: DataSpaceNode) -> Obj:
    names = Names(node.name)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(node, names.agent),
        # Read its own key, config and the trust bundle, nothing else: enough to reload
        # them faster than the kubelet's volume sync when an operator runs it that way.
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": [
                    names.key_secret,
                    names.gateway_tls,
                    *([names.callers] if callers(node) else []),
                ],
                "verbs": ["get", "watch"],
            },
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": [names.agent_config, TRUST_BUNDLE_CONFIGMAP],
                "verbs": ["get", "watch"],
            },
        ],
    }


def role_binding(node: DataSpaceNode) -> Obj:
    names = Names(node.name)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(node, names.agent),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": names.agent},
        "subjects": [
            {"kind": "ServiceAccount", "name": names.agent, "namespace": target_namespace(node)}
        ],
    }


def gateway_settings(view: GatewayView, *, with_callers: bool = False) -> dict[str, Any]:
    """The ``gateway:`` section (trustspace_agent.gateway_config.GatewayConfig): every path
    is a volume of the StatefulSet below, every peer a MirrorLink destination's endpoint."""
    settings: dict[str, Any] = {
        "policyBundleFile": f"{BUNDLE_DIR}/{POLICY_BUNDLE_KEY}",
        "trustBundleFile": f"{BUNDLE_DIR}/{TRUST_BUNDLE_KEY}",
        "hubPublicKeyFile": f"{BUNDLE_DIR}/hub.pem",
        "inboundHost": "0.0.0.0",  # noqa: S104 - inside the Pod; the Service is the door
        "inboundPort": GATEWAY_PORT,
        "tlsCertFile": f"{TLS_DIR}/tls.crt",
        "tlsKeyFile": f"{TLS_DIR}/tls.key",
        "peerCaFile": f"{BUNDLE_DIR}/{GATEWAY_CA_KEY}",
        "peers": dict(view.peers),
        "approverKeysFile": f"{BUNDLE_DIR}/{APPROVERS_KEY}",
        "secretsDir": SECRETS_DIR,
        "stateDir": f"{DATA_DIR}/gateway",
    }
    if with_callers:
        # Without it the agent serves loopback only: its own Pod, none of the node's apps.
        settings["callerTokensFile"] = f"{CALLERS_DIR}/{CALLERS_KEY}"
    return settings


def agent_settings(
    node: DataSpaceNode, collector_url: str, gateway: GatewayView | None = None
) -> dict[str, Any]:
    """The agent's configuration file (trustspace_agent.config.AgentConfig, camelCase)."""
    spec = node.spec
    buffer_bytes = int(parse_quantity(spec.agent.audit_buffer_size))
    settings: dict[str, Any] = {
        "node": node.name,
        "storePath": f"{DATA_DIR}/audit.db",
        # Headroom on the volume for SQLite's write-ahead log and checkpoints.
        "storeMaxBytes": buffer_bytes * 8 // 10,
        "keyFile": f"{KEY_DIR}/key.pem",
        "collectorUrl": collector_url,
        "caFile": f"{BUNDLE_DIR}/{COLLECTOR_CA_KEY}",
        "heartbeatSeconds": parse_duration(spec.agent.heartbeat_interval).total_seconds(),
        # The node's own apps call the local API from other Pods, so not loopback only.
        "listenHost": "0.0.0.0",  # noqa: S104 - inside the Pod
        "listenPort": API_PORT,
    }
    if spec.capabilities.gateway.enabled:
        settings["gateway"] = gateway_settings(
            gateway or GatewayView(), with_callers=bool(callers(node))
        )
    return settings


def agent_config(
    node: DataSpaceNode, collector_url: str, gateway: GatewayView | None = None
) -> Obj:
    text = yaml.safe_dump(agent_settings(node, collector_url, gateway), sort_keys=True)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(node, Names(node.name).agent_config),
        "data": {"agent.yaml": text},
    }


def caller_token_secret(node: DataSpaceNode, caller: str, token: str) -> Obj:
    """A caller's bearer token, for the app to mount; the agent never sees it."""
    meta = _meta(node, Names(node.name).caller_token(caller))
    meta["labels"] = {**meta["labels"], CALLER_LABEL: caller}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": meta,
        "data": {TOKEN_KEY: base64.b64encode(token.encode()).decode()},
    }


def callers_secret(node: DataSpaceNode, digests: Mapping[str, str]) -> Obj:
    """The agent's ``callerTokensFile``: SM3 digests only, so the agent's Pod holds nothing
    that would let it (or whoever reads its volumes) call as an app."""
    text = yaml.safe_dump({c: [digests[c]] for c in callers(node)}, sort_keys=True)
    meta = _meta(node, Names(node.name).callers)
    # Labelled like the token Secrets (no caller of its own), so one list finds them all.
    meta["labels"] = {**meta["labels"], CALLER_LABEL: ""}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": meta,
        "data": {CALLERS_KEY: base64.b64encode(text.encode()).decode()},
    }


def config_hash(config_map: Obj) -> str:
    return sm3(str(config_map["data"]["agent.yaml"]).encode()).hex()[:32]


def _secret_volume_name(secret: str) -> str:
    # Volume names are DNS labels of at most 63 characters; Secret names may be longer.
    return f"secret-{sm3(secret.encode()).hex()[:16]}"


def _resources(node: DataSpaceNode) -> Obj:
    res = node.spec.agent.resources
    if res is None:
        return {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}
    dumped: Obj = res.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped


def stateful_set(
    node: DataSpaceNode, image: str, *, config_digest: str = "", secrets: tuple[str, ...] = ()
) -> Obj:
    names = Names(node.name)
    agent = node.spec.agent
    gateway = node.spec.capabilities.gateway.enabled
    ports: list[Obj] = [{"name": "api", "containerPort": API_PORT, "protocol": "TCP"}]
    mounts: list[Obj] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "key", "mountPath": KEY_DIR, "readOnly": True},
        {"name": "trust", "mountPath": BUNDLE_DIR, "readOnly": True},
        {"name": "audit", "mountPath": DATA_DIR},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir, not the host's
    ]
    volumes: list[Obj] = [
        {"name": "config", "configMap": {"name": names.agent_config}},
        {"name": "key", "secret": {"secretName": names.key_secret, "defaultMode": 0o400}},
        {"name": "trust", "configMap": {"name": TRUST_BUNDLE_CONFIGMAP, "optional": True}},
        {"name": "tmp", "emptyDir": {}},
    ]
    if callers(node):
        # Not optional: an agent told to check tokens must not start without them.
        mounts.append({"name": "callers", "mountPath": CALLERS_DIR, "readOnly": True})
        volumes.append(
            {"name": "callers", "secret": {"secretName": names.callers, "defaultMode": 0o400}}
        )
    if gateway:
        ports.append({"name": "gateway", "containerPort": GATEWAY_PORT, "protocol": "TCP"})
        mounts.append({"name": "gateway-tls", "mountPath": TLS_DIR, "readOnly": True})
        volumes.append(
            {
                "name": "gateway-tls",
                "secret": {"secretName": names.gateway_tls, "defaultMode": 0o400},
            }
        )
        for secret in secrets:
            # Optional: a pseudonymisation key the node's admin has not provided yet makes
            # only the transfers that need it fail, not the whole agent.
            vol = _secret_volume_name(secret)
            mounts.append({"name": vol, "mountPath": f"{SECRETS_DIR}/{secret}", "readOnly": True})
            volumes.append(
                {
                    "name": vol,
                    "secret": {"secretName": secret, "optional": True, "defaultMode": 0o400},
                }
            )
    container: Obj = {
        "name": "agent",
        "image": agent.image or image,
        "args": ["agent", "run", "--config", f"{CONFIG_DIR}/agent.yaml"],
        "ports": ports,
        "resources": _resources(node),
        "readinessProbe": {
            "httpGet": {"path": "/healthz", "port": "api"},
            "periodSeconds": 10,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "api"},
            "periodSeconds": 20,
            "failureThreshold": 3,
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
    }
    if agent.image_pull_policy:
        container["imagePullPolicy"] = str(agent.image_pull_policy)
    pvc_spec: Obj = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": agent.audit_buffer_size}},
    }
    if agent.storage_class_name:
        pvc_spec["storageClassName"] = agent.storage_class_name
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(node, names.agent),
        "spec": {
            "replicas": agent.replicas,
            "serviceName": names.gateway,
            "selector": {"matchLabels": selector(node)},
            # Ordered start is useless here and only slows a rollout down.
            "podManagementPolicy": "Parallel",
            "template": {
                "metadata": {
                    "labels": labels(node),
                    "annotations": {CONFIG_HASH_ANNOTATION: config_digest},
                },
                "spec": {
                    "serviceAccountName": names.agent,
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "fsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": volumes,
                },
            },
            "volumeClaimTemplates": [
                {"metadata": {"name": "audit", "labels": labels(node)}, "spec": pvc_spec}
            ],
            # The audit buffer goes with the node: owned by the StatefulSet, it is collected
            # with it (a local node has no finalizer that would delete it by label).
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Delete",
                "whenScaled": "Retain",
            },
        },
    }


def service(node: DataSpaceNode) -> Obj:
    port = node.spec.capabilities.gateway.port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(node, Names(node.name).gateway),
        "spec": {
            "selector": selector(node),
            "ports": [
                {"name": "gateway", "port": port, "targetPort": "gateway", "protocol": "TCP"}
            ],
        },
    }


def network_policy(node: DataSpaceNode) -> Obj:
    """Who may open a connection to the agent's Pods: peers on the gateway port (from any
    address: they arrive from other clusters' nodes and are authenticated by TLS and SM2),
    and on the local API only Pods of the node's namespace that carry the caller label of a
    caller the node declares. Nothing else, not even other Pods of the namespace. Kubelet
    probes and `kubectl port-forward` reach the Pod from its node and are not affected."""
    ingress: list[Obj] = []
    if node.spec.capabilities.gateway.enabled:
        ingress.append({"ports": [{"port": "gateway", "protocol": "TCP"}]})
    declared = callers(node)
    if declared:
        peers = {"matchExpressions": [{"key": CALLER_LABEL, "operator": "In", "values": declared}]}
        ingress.append(
            {"from": [{"podSelector": peers}], "ports": [{"port": "api", "protocol": "TCP"}]}
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(node, Names(node.name).agent),
        "spec": {
            "podSelector": {"matchLabels": selector(node)},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }


def desired_objects(
    node: DataSpaceNode,
    *,
    image: str,
    collector_url: str,
    gateway: GatewayView | None = None,
    caller_digests: Mapping[str, str] | None = None,
) -> list[Obj]:
    """Everything but the key Secret (see keys.py), the gateway's TLS Secret (tls/gateway.py),
    the callers' token Secrets (caller_tokens.py, whose `caller_digests` come in) and the
    shared trust bundle (space/trust_bundle.py), in the order they must be applied."""
    view = gateway or GatewayView()
    config = agent_config(node, collector_url, view)
    objs = [service_account(node), role(node), role_binding(node), config]
    if callers(node):
        # Token changes need no rollout: the kubelet updates the mounted file and the
        # agent re-reads it (trustspace_agent.gateway.callers); only agent.yaml is hashed.
        objs.append(callers_secret(node, caller_digests or {}))
    objs.append(stateful_set(node, image, config_digest=config_hash(config), secrets=view.secrets))
    if node.spec.capabilities.gateway.enabled:
        objs.append(service(node))
    objs.append(network_policy(node))
    return objs
