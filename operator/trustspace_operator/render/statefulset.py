"""The agent's StatefulSet: one container with its config, key, trust bundle, TLS, callers
and pseudonymisation secrets as volumes, and the audit buffer as a volume claim."""

from __future__ import annotations

from trustspace.api.dataspacenode import DataSpaceNode
from trustspace.crypto import sm3
from trustspace.kube import Obj
from trustspace_operator.render.constants import (
    API_PORT,
    BUNDLE_DIR,
    CALLERS_DIR,
    CONFIG_DIR,
    CONFIG_HASH_ANNOTATION,
    DATA_DIR,
    GATEWAY_PORT,
    KEY_DIR,
    SECRETS_DIR,
    TLS_DIR,
    TRUST_BUNDLE_CONFIGMAP,
)
from trustspace_operator.render.meta import Names, callers, labels, object_meta, selector


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
        "metadata": object_meta(node, names.agent),
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
