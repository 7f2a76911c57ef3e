"""Watches of the objects the operator owns in the hub cluster, to repair drift at once.

One raw watch per kind (and watched namespace), label-selected to our objects. Almost every
event is one the operator caused itself (its creations and applies coming back), so each
line is judged before it is parsed where possible: `ADDED` and bookmarks are dropped by
their first bytes; a `MODIFIED` whose last writer is our field manager is dropped after
parsing. What is left (a change or deletion by someone else, a workload's readiness moving)
enqueues the owning node. kopf's own watches would keep a per-object memory and run every
event through its handler machinery: for a thousand nodes, seven thousand objects' worth.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from trustspace.kube import ApiError, Kube, Unreachable
from trustspace.kube import kinds as k
from trustspace.kube.client import FIELD_MANAGER
from trustspace_operator import render

log = logging.getLogger(__name__)
#: Kinds the operator creates per node in the hub cluster (the key Secret included).
OWNED_KINDS = (
    k.SERVICE_ACCOUNT,
    k.ROLE,
    k.ROLE_BINDING,
    k.CONFIG_MAP,
    k.STATEFUL_SET,
    k.SERVICE,
    k.NETWORK_POLICY,
    k.SECRET,
)
SELECTOR = f"app.kubernetes.io/managed-by={render.MANAGED_BY},{render.NODE_LABEL}"
#: (node namespace, node name, cause) -> None
Enqueue = Callable[[str, str, str], None]
_SKIP_PREFIXES = (b'{"type":"ADDED"', b'{"type":"BOOKMARK"')


def last_writer(meta: Mapping[str, Any]) -> str | None:
    """The field manager of the most recent write (managedFields times are per second)."""
    fields = meta.get("managedFields") or []
    latest = max(fields, key=lambda f: f.get("time") or "", default=None)
    return latest.get("manager") if latest else None


class OwnedWatcher:
    """Threads that watch the owned kinds and enqueue nodes whose objects others changed."""

    def __init__(
        self,
        kube: Kube,
        namespaces: list[str],
        enqueue: Enqueue,
        *,
        kinds: tuple[k.Kind, ...] = OWNED_KINDS,
        retry_every: float = 2.0,
    ) -> None:
        self.kube = kube
        self.scopes: list[str | None] = list(namespaces) or [None]
        self.enqueue = enqueue
        self.kinds = kinds
        self.retry_every = retry_every
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        #: Last (replicas, readyReplicas) seen per StatefulSet: readiness is worth a reconcile.
        self._workloads: dict[tuple[str, str], tuple[Any, Any]] = {}

    def start(self) -> None:
        for kind in self.kinds:
            for ns in self.scopes:
                thread = threading.Thread(
                    target=self._run, args=(kind, ns), name=f"watch-{kind.plural}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()

    def _run(self, kind: k.Kind, ns: str | None) -> None:
        version: str | None = None
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._current_version(kind, ns)
                version = self._watch(kind, ns, version)
            except ApiError as exc:
                if exc.status == 410:  # too old: start from now (the resync covers the gap)
                    version = None
                    continue
                log.warning("watch of %s failed: %s", kind.plural, exc)
                self._stop.wait(self.retry_every)
            except (Unreachable, ValueError) as exc:
                log.warning("watch of %s interrupted: %s", kind.plural, exc)
                self._stop.wait(self.retry_every)

    def _current_version(self, kind: k.Kind, ns: str | None) -> str:
        page = self.kube.request(
            "GET", kind.path(ns), query=[("limit", "1"), ("labelSelector", SELECTOR)]
        )
        return str(page.get("metadata", {}).get("resourceVersion", ""))

    def _watch(self, kind: k.Kind, ns: str | None, version: str) -> str | None:
        for line in self.kube.watch_lines(kind, ns, labels=SELECTOR, resource_version=version):
            if self._stop.is_set():
                return version
            if line.startswith(_SKIP_PREFIXES):
                # Our own creations coming back, or a bookmark; the version is cheap to lift
                # from a bookmark, and an ADDED one only matters if the watch must resume.
                if line.startswith(b'{"type":"BOOKMARK"'):
                    version = _version_of(orjson.loads(line)["object"]) or version
                continue
            event = orjson.loads(line)
            etype, obj = event.get("type"), event.get("object") or {}
            if etype == "ERROR":
                code = int(obj.get("code") or 500)
                raise ApiError(code, str(obj.get("reason", "")), str(obj.get("message", "")))
            version = _version_of(obj) or version
            self.handle(kind, str(etype), obj)
        return version

    def handle(self, kind: k.Kind, etype: str, obj: Mapping[str, Any]) -> None:
        """Decide about one parsed event (public for tests)."""
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        node, node_ns = labels.get(render.NODE_LABEL), labels.get(render.NODE_NAMESPACE_LABEL)
        if not node or not node_ns:
            return
        if kind == k.STATEFUL_SET:
            key = (str(meta.get("namespace")), str(meta.get("name")))
            status = obj.get("status") or {}
            seen = (status.get("replicas"), status.get("readyReplicas"))
            if etype == "DELETED":
                self._workloads.pop(key, None)
            elif self._workloads.get(key) != seen:
                self._workloads[key] = seen
                if seen != (None, None):
                    self.enqueue(node_ns, node, "workload")
                    return
        if etype == "MODIFIED" and last_writer(meta) == FIELD_MANAGER:
            return  # our own write coming back
        if etype in ("MODIFIED", "DELETED"):
            self.enqueue(node_ns, node, "drift")


def _version_of(obj: Mapping[str, Any]) -> str | None:
    version = (obj.get("metadata") or {}).get("resourceVersion")
    return str(version) if version else None
