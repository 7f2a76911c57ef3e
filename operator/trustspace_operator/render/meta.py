"""Who a node's objects are: their names, labels, owner references and metadata, and the
Namespace they live in. Every other render module builds on these, so nothing guesses a name."""

from __future__ import annotations

from dataclasses import dataclass

from trustspace.api.constants import GROUP
from trustspace.api.dataspacenode import DataSpaceNode, PlacementMode
from trustspace.kube import Obj
from trustspace_operator.render.constants import MANAGED_BY, NODE_LABEL, NODE_NAMESPACE_LABEL


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
    and namespace. Elsewhere the operator's finalizer removes them (nodes/cleanup.py)."""
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


def object_meta(node: DataSpaceNode, name: str, namespaced: bool = True) -> Obj:
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
        "metadata": object_meta(node, target_namespace(node), False),
    }
