"""Who reaches the agent: the gateway's Service for peers, and the NetworkPolicy that lets in
peers on the gateway port and the node's declared callers on the local API."""

from __future__ import annotations

from trustspace.api.dataspacenode import DataSpaceNode
from trustspace.kube import Obj
from trustspace_operator.render.constants import CALLER_LABEL
from trustspace_operator.render.meta import Names, callers, object_meta, selector


def service(node: DataSpaceNode) -> Obj:
    port = node.spec.capabilities.gateway.port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(node, Names(node.name).gateway),
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
        "metadata": object_meta(node, Names(node.name).agent),
        "spec": {
            "podSelector": {"matchLabels": selector(node)},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }
