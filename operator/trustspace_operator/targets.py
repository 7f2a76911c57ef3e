"""Where a node's objects live: this (hub) cluster, or a remote edge cluster (B1).

A remote cluster is reached with the kubeconfig in the Secret the node names. Clients are
cached per Secret version, so a rotated kubeconfig takes effect on the next reconcile.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass

import yaml

from trustspace.api.dataspacenode import DataSpaceNode, PlacementMode
from trustspace.kube import Kube
from trustspace.kube import kinds as k

DEFAULT_KUBECONFIG_KEY = "kubeconfig"


class TargetUnavailable(Exception):
    """The node's cluster cannot be used; `reason` is a condition reason, message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Target:
    kube: Kube
    remote: bool
    description: str


class Targets:
    def __init__(self, hub: Kube, remote_timeout: tuple[float, float] = (3.0, 15.0)) -> None:
        self.hub = hub
        self.remote_timeout = remote_timeout
        self._cache: dict[tuple[str, str], tuple[str, Kube]] = {}
        self._lock = threading.Lock()

    def for_node(self, node: DataSpaceNode) -> Target:
        placement = node.spec.placement
        if placement.mode == PlacementMode.LOCAL:
            return Target(self.hub, remote=False, description="this cluster")
        ref = placement.kubeconfig_secret_ref
        if ref is None:  # the CRD forbids it; guard for objects written before validation
            raise TargetUnavailable("InvalidSpec", "Remote placement without kubeconfigSecretRef")
        key = ref.key or DEFAULT_KUBECONFIG_KEY
        secret = self.hub.get(k.SECRET, ref.name, node.namespace)
        if secret is None:
            raise TargetUnavailable(
                "KubeconfigSecretMissing",
                f"Secret {node.namespace}/{ref.name} with the edge cluster's kubeconfig does "
                f"not exist; create it (key {key!r}) and the node will be provisioned",
            )
        version = str(secret["metadata"].get("resourceVersion"))
        cache_key = (node.namespace, ref.name)
        with self._lock:
            cached = self._cache.get(cache_key)
            if cached and cached[0] == version:
                return Target(
                    cached[1], remote=True, description=f"remote cluster {cached[1].server}"
                )
        raw = secret.get("data", {}).get(key)
        if raw is None:
            raise TargetUnavailable(
                "KubeconfigSecretMissing",
                f"Secret {node.namespace}/{ref.name} has no key {key!r} holding a kubeconfig",
            )
        try:
            doc = yaml.safe_load(base64.b64decode(raw))
            kube = Kube.from_kubeconfig_dict(doc, timeout=self.remote_timeout)
        except Exception as exc:
            raise TargetUnavailable(
                "KubeconfigInvalid",
                f"Secret {node.namespace}/{ref.name} key {key!r} is not a usable kubeconfig: "
                f"{type(exc).__name__}",
            ) from None
        with self._lock:
            old = self._cache.get(cache_key)
            self._cache[cache_key] = (version, kube)
        if old is not None:
            old[1].close()
        return Target(kube, remote=True, description=f"remote cluster {kube.server}")
