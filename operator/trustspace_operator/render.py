"""What a mirror node needs in its cluster, as plain Kubernetes objects (B1).

Pure functions of the DataSpaceNode: no I/O, so drift detection compares against exactly
what was rendered, and tests can read the objects without a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from trustspace.api.common import parse_duration, parse_quantity
from trustspace.api.constants import GROUP
from trustspace.api.dataspacenode import DataSpaceNode, PlacementMode
from trustspace.kube import Obj

MANAGED_BY = "trustspace-operator"
NODE_LABEL = f"{GROUP}/node"
NODE_NAMESPACE_LABEL = f"{GROUP}/node-namespace"
TRUST_BUNDLE_CONFIGMAP = "trustspace-trust-bundle"
TRUST_BUNDLE_KEY = "bundle.json"
#: Key in the same ConfigMap holding the signed policy bundle envelope (policies.py).
POLICY_BUNDLE_KEY = "policy-bundle.json"
#: Key in the trust-bundle ConfigMap holding the CA of the hub collector's TLS certificate.
COLLECTOR_CA_KEY = "collector-ca.crt"
AGENT_PORT = 8443
METRICS_PORT = 9090
CONFIG_DIR = "/etc/trustspace"
KEY_DIR = "/var/run/trustspace/key"
BUNDLE_DIR = "/var/run/trustspace/trust"
DATA_DIR = "/var/lib/trustspace"


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


def owner_reference(node: DataSpaceNode) -> list[Obj]:
    """Owner references only where the API allows them: same cluster, same namespace."""
    if node.spec.placement.mode != PlacementMode.LOCAL:
        return []
    if target_namespace(node) != node.namespace:
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
                "resourceNames": [names.key_secret],
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


def agent_settings(node: DataSpaceNode, collector_url: str) -> dict[str, Any]:
    """The agent's configuration file (trustspace_agent.config.AgentConfig, camelCase)."""
    spec = node.spec
    buffer_bytes = int(parse_quantity(spec.agent.audit_buffer_size))
    return {
        "node": node.name,
        "storePath": f"{DATA_DIR}/audit.db",
        # Headroom on the volume for SQLite's write-ahead log and checkpoints.
        "storeMaxBytes": buffer_bytes * 8 // 10,
        "keyFile": f"{KEY_DIR}/key.pem",
        "collectorUrl": collector_url,
        "caFile": f"{BUNDLE_DIR}/{COLLECTOR_CA_KEY}",
        "heartbeatSeconds": parse_duration(spec.agent.heartbeat_interval).total_seconds(),
        "listenHost": "0.0.0.0",  # noqa: S104 - inside the Pod; the Service is the door
        "listenPort": AGENT_PORT,
    }


def agent_config(node: DataSpaceNode, collector_url: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(node, Names(node.name).agent_config),
        "data": {"agent.yaml": yaml.safe_dump(agent_settings(node, collector_url), sort_keys=True)},
    }


def _resources(node: DataSpaceNode) -> Obj:
    res = node.spec.agent.resources
    if res is None:
        return {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}
    dumped: Obj = res.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped


def stateful_set(node: DataSpaceNode, image: str) -> Obj:
    names = Names(node.name)
    agent = node.spec.agent
    container: Obj = {
        "name": "agent",
        "image": agent.image or image,
        "args": ["agent", "run", "--config", f"{CONFIG_DIR}/agent.yaml"],
        "ports": [
            {"name": "gateway", "containerPort": AGENT_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
        "resources": _resources(node),
        "readinessProbe": {
            "httpGet": {"path": "/healthz", "port": "metrics"},
            "periodSeconds": 10,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "metrics"},
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
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "key", "mountPath": KEY_DIR, "readOnly": True},
            {"name": "trust", "mountPath": BUNDLE_DIR, "readOnly": True},
            {"name": "audit", "mountPath": DATA_DIR},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir, not the host's
        ],
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
                "metadata": {"labels": labels(node)},
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
                    "volumes": [
                        {"name": "config", "configMap": {"name": names.agent_config}},
                        {
                            "name": "key",
                            "secret": {"secretName": names.key_secret, "defaultMode": 0o400},
                        },
                        {
                            "name": "trust",
                            "configMap": {"name": TRUST_BUNDLE_CONFIGMAP, "optional": True},
                        },
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
            "volumeClaimTemplates": [
                {"metadata": {"name": "audit", "labels": labels(node)}, "spec": pvc_spec}
            ],
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


def desired_objects(node: DataSpaceNode, *, image: str, collector_url: str) -> list[Obj]:
    """Everything but the key Secret (see keys.py) and the shared trust bundle (bundle.py),
    in the order they must be applied."""
    objs = [
        service_account(node),
        role(node),
        role_binding(node),
        agent_config(node, collector_url),
        stateful_set(node, image),
    ]
    if node.spec.capabilities.gateway.enabled:
        objs.append(service(node))
    return objs
