"""What a node's gateway needs to know about the rest of its data space.

A node delivers to the destinations of the MirrorLinks it is the source of, at their
`spec.endpoint`; it pseudonymises with the Secrets the space's TransferPolicies name
(`keySecretRef`). Both go into the agent ConfigMap the operator renders, so the
controller asks this directory rather than listing links and policies on every
reconcile: the space controller lists them once per pass anyway and refreshes it,
and reports the nodes whose view changed so their config is re-rendered at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from trustspace.kube import Kube, Obj
from trustspace.kube import kinds as k


@dataclass(frozen=True)
class GatewayView:
    """One node's peers (destination name -> gateway URL) and the Secrets it mounts."""

    peers: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()


@dataclass
class _Space:
    endpoints: dict[str, str]
    links: dict[str, set[str]]
    secrets: tuple[str, ...]

    def view(self, node: str) -> GatewayView:
        peers = {
            d: self.endpoints[d] for d in sorted(self.links.get(node, ())) if d in self.endpoints
        }
        return GatewayView(peers, self.secrets)


def _secret_refs(doc: Any) -> Iterator[str]:
    """Every `keySecretRef.name` anywhere in a policy spec."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == "keySecretRef" and isinstance(value, dict) and value.get("name"):
                yield str(value["name"])
            else:
                yield from _secret_refs(value)
    elif isinstance(doc, list):
        for item in doc:
            yield from _secret_refs(item)


def build_space(nodes: list[Obj], links: list[Obj], policies: list[Obj]) -> _Space:
    endpoints: dict[str, str] = {}
    for body in nodes:
        if body["metadata"].get("deletionTimestamp"):
            continue
        spec = body.get("spec") or {}
        gateway = (spec.get("capabilities") or {}).get("gateway") or {}
        if gateway.get("enabled", True) and spec.get("endpoint"):
            endpoints[body["metadata"]["name"]] = str(spec["endpoint"])
    routes: dict[str, set[str]] = {}
    for link in links:
        if link["metadata"].get("deletionTimestamp"):
            continue
        spec = link.get("spec") or {}
        src = (spec.get("source") or {}).get("name")
        dst = (spec.get("destination") or {}).get("name")
        if src and dst:
            routes.setdefault(str(src), set()).add(str(dst))
    secrets = sorted({s for p in policies for s in _secret_refs(p.get("spec") or {})})
    return _Space(endpoints, routes, tuple(secrets))


class SpaceDirectory:
    def __init__(self, hub: Kube) -> None:
        self.hub = hub
        self._spaces: dict[str, _Space] = {}
        self._lock = threading.Lock()

    def view(self, namespace: str, node: str) -> GatewayView:
        with self._lock:
            space = self._spaces.get(namespace)
        if space is None:
            # Before the space controller's first pass over this namespace (a fresh start).
            space = build_space(
                list(self.hub.list(k.DATASPACENODE, namespace)),
                list(self.hub.list(k.MIRRORLINK, namespace)),
                list(self.hub.list(k.TRANSFERPOLICY, namespace)),
            )
            with self._lock:
                space = self._spaces.setdefault(namespace, space)
        return space.view(node)

    def refresh(
        self, namespace: str, nodes: list[Obj], links: list[Obj], policies: list[Obj]
    ) -> list[str]:
        """Take the space controller's fresh lists; the nodes whose view changed (none the first
        time: nothing was rendered from an older view that could be stale)."""
        new = build_space(nodes, links, policies)
        with self._lock:
            old = self._spaces.get(namespace)
            self._spaces[namespace] = new
        if old is None:
            return []
        names = {b["metadata"]["name"] for b in nodes}
        return sorted(n for n in names if old.view(n) != new.view(n))
