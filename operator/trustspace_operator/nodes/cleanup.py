"""Removing what a deleted node owns where owner references cannot reach (another cluster or
namespace); the garbage collector removes the rest."""

from __future__ import annotations

from trustspace.api.constants import NodeReason
from trustspace.api.dataspacenode import DataSpaceNode
from trustspace.kube import Obj, Unreachable
from trustspace.kube import kinds as k
from trustspace_operator import render
from trustspace_operator.events import EventRecorder
from trustspace_operator.nodes.objects import CREATED_NAMESPACE_ANNOTATION
from trustspace_operator.targets import Targets, TargetUnavailable

SKIP_REMOTE_CLEANUP_ANNOTATION = "trustspace.io/skip-remote-cleanup"
_CLEANUP_KINDS = (
    k.STATEFUL_SET,
    k.NETWORK_POLICY,
    k.SERVICE,
    k.CONFIG_MAP,
    k.ROLE_BINDING,
    k.ROLE,
    k.SERVICE_ACCOUNT,
    k.SECRET,
    k.PVC,
)


def remove_owned(body: Obj, node: DataSpaceNode, targets: Targets, events: EventRecorder) -> None:
    """Delete the node's labelled objects and the namespace created for it. An unreachable
    cluster raises (the delete handler retries) unless the node is annotated to skip it."""
    ann = body["metadata"].get("annotations") or {}
    try:
        target = targets.for_node(node)
    except TargetUnavailable as exc:
        if (
            ann.get(SKIP_REMOTE_CLEANUP_ANNOTATION) == "true"
            or exc.reason == "KubeconfigSecretMissing"
        ):
            events.post(body, "Warning", "CleanupSkipped", f"left objects in place: {exc.message}")
            return
        raise
    ns = render.target_namespace(node)
    selector = {render.NODE_LABEL: node.name, render.NODE_NAMESPACE_LABEL: node.namespace}
    try:
        for kind in _CLEANUP_KINDS:
            for obj in list(target.kube.list(kind, ns, labels=selector)):
                target.kube.delete(kind, obj["metadata"]["name"], ns)
        space = target.kube.get(k.NAMESPACE, ns)
        created_for = ((space or {}).get("metadata", {}).get("annotations") or {}).get(
            CREATED_NAMESPACE_ANNOTATION
        )
        if created_for == f"{node.namespace}/{node.name}":
            target.kube.delete(k.NAMESPACE, ns)
    except Unreachable:
        if ann.get(SKIP_REMOTE_CLEANUP_ANNOTATION) == "true":
            events.post(
                body,
                "Warning",
                "CleanupSkipped",
                f"{target.description} unreachable; objects left there",
            )
            return
        events.post(
            body,
            "Warning",
            NodeReason.REMOTE_CLUSTER_UNREACHABLE,
            f"cannot remove the node's objects from {target.description}; retrying. Annotate "
            f"{SKIP_REMOTE_CLEANUP_ANNOTATION}=true to delete without cleaning up",
        )
        raise
