"""What a mirror node needs in its cluster, as plain Kubernetes objects (B1).

Pure functions of the DataSpaceNode: no I/O, so drift detection compares against exactly
what was rendered, and tests can read the objects without a cluster. One module per kind of
object (meta, rbac, agent_config, caller_secrets, statefulset, network); this one composes
them in the order they are applied, and re-exports the names the rest of the operator uses
as ``render.X``.
"""

from __future__ import annotations

from collections.abc import Mapping

from trustspace.api.dataspacenode import DataSpaceNode
from trustspace.kube import Obj
from trustspace_operator.peers import GatewayView
from trustspace_operator.render.agent_config import (
    agent_config,
    agent_settings,
    config_hash,
    gateway_settings,
)
from trustspace_operator.render.caller_secrets import caller_token_secret, callers_secret
from trustspace_operator.render.constants import (
    API_PORT,
    APPROVERS_KEY,
    BUNDLE_DIR,
    CALLER_LABEL,
    CALLERS_DIR,
    CALLERS_KEY,
    COLLECTOR_CA_KEY,
    CONFIG_DIR,
    CONFIG_HASH_ANNOTATION,
    DATA_DIR,
    GATEWAY_CA_KEY,
    GATEWAY_PORT,
    KEY_DIR,
    MANAGED_BY,
    NODE_LABEL,
    NODE_NAMESPACE_LABEL,
    POLICY_BUNDLE_KEY,
    SECRETS_DIR,
    TLS_DIR,
    TOKEN_KEY,
    TRUST_BUNDLE_CONFIGMAP,
    TRUST_BUNDLE_KEY,
)
from trustspace_operator.render.meta import (
    Names,
    callers,
    collected_with_node,
    labels,
    namespace,
    object_meta,
    owner_reference,
    selector,
    target_namespace,
)
from trustspace_operator.render.network import network_policy, service
from trustspace_operator.render.rbac import role, role_binding, service_account
from trustspace_operator.render.statefulset import stateful_set

__all__ = [
    "API_PORT",
    "APPROVERS_KEY",
    "BUNDLE_DIR",
    "CALLERS_DIR",
    "CALLERS_KEY",
    "CALLER_LABEL",
    "COLLECTOR_CA_KEY",
    "CONFIG_DIR",
    "CONFIG_HASH_ANNOTATION",
    "DATA_DIR",
    "GATEWAY_CA_KEY",
    "GATEWAY_PORT",
    "KEY_DIR",
    "MANAGED_BY",
    "NODE_LABEL",
    "NODE_NAMESPACE_LABEL",
    "POLICY_BUNDLE_KEY",
    "SECRETS_DIR",
    "TLS_DIR",
    "TOKEN_KEY",
    "TRUST_BUNDLE_CONFIGMAP",
    "TRUST_BUNDLE_KEY",
    "Names",
    "agent_config",
    "agent_settings",
    "caller_token_secret",
    "callers",
    "callers_secret",
    "collected_with_node",
    "config_hash",
    "desired_objects",
    "gateway_settings",
    "labels",
    "namespace",
    "network_policy",
    "object_meta",
    "owner_reference",
    "role",
    "role_binding",
    "selector",
    "service",
    "service_account",
    "stateful_set",
    "target_namespace",
]


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
