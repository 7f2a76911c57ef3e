"""Delivering a data space's trust ConfigMap to every cluster and namespace its nodes run in,
once per content."""

from __future__ import annotations

import logging
from typing import Any

from trustspace.kube import ApiError, Kube, Obj, Unreachable
from trustspace_operator import render
from trustspace_operator.space.trust_bundle import configmap
from trustspace_operator.space.validated_nodes import ValidatedNodes
from trustspace_operator.targets import Targets, TargetUnavailable

log = logging.getLogger(__name__)


class Delivery:
    def __init__(self, targets: Targets, nodes: ValidatedNodes, collector_ca: str | None) -> None:
        self.targets = targets
        self.nodes = nodes
        self.collector_ca = collector_ca
        #: The document hash last delivered per (API server, namespace).
        self._delivered: dict[tuple[str, str], str] = {}

    def deliver(self, bodies: list[Obj], doc: dict[str, Any]) -> None:
        destinations: dict[tuple[str, str], Kube] = {}
        for body in bodies:
            try:
                node = self.nodes.node(body)
                target = self.targets.for_node(node)
            except (TargetUnavailable, ValueError):
                continue
            destinations[(target.kube.server, render.target_namespace(node))] = target.kube
        for (server, ns), kube in sorted(destinations.items(), key=lambda d: d[0]):
            if self._delivered.get((server, ns)) == doc["hash"]:
                continue
            try:
                kube.apply(configmap(ns, doc, self.collector_ca))
                self._delivered[(server, ns)] = doc["hash"]
            except (ApiError, Unreachable) as exc:
                log.warning("trust bundle not delivered to %s namespace %s: %s", server, ns, exc)
