"""The agent's identity in its cluster: a ServiceAccount without a token, and a Role that
reads only the node's own Secrets and ConfigMaps."""

from __future__ import annotations

from trustspace.api.dataspacenode import DataSpaceNode
from trustspace.kube import Obj
from trustspace_operator.render.constants import TRUST_BUNDLE_CONFIGMAP
from trustspace_operator.render.meta import Names, callers, object_meta, target_namespace


def service_account(node: DataSpaceNode) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": object_meta(node, Names(node.name).agent),
        # The agent needs no API token: its key, config and trust bundle arrive as volumes.
        "automountServiceAccountToken": False,
    }


def role(node: DataSpaceNode) -> Obj:
    names = Names(node.name)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": object_meta(node, names.agent),
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
        "metadata": object_meta(node, names.agent),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": names.agent},
        "subjects": [
            {"kind": "ServiceAccount", "name": names.agent, "namespace": target_namespace(node)}
        ],
    }
