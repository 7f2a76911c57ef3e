"""Where the collector reports node status: a small sink interface.

* :class:`NullSink` - does nothing;
* :class:`FileSink` - appends one JSON line per report (tests, debugging without Kubernetes);
* :class:`KubernetesSink` - server-side apply on ``DataSpaceNode`` ``/status`` with its own
  field manager (:data:`FIELD_MANAGER`), and a Warning Event when streaming breaks.

Conditions are a list-map keyed by ``type``, so server-side apply merges each manager's
entries; a read-modify-write of the whole list would race with the operator and could wipe
its conditions. Server-side apply also drops fields a manager owned but left out, so every
write sends the full set of fields the collector owns for that node (:mod:`.node_view`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from trustspace import clock
from trustspace.api.constants import DATASPACENODE_KIND, GROUP, VERSION
from trustspace.kube import ApiError, Kube, NotFound, Obj, Unreachable
from trustspace.kube import kinds as k
from trustspace_operator.collector.node_reports import NodeUpdate
from trustspace_operator.collector.node_view import NodeView

log = logging.getLogger(__name__)

#: The collector's field manager on DataSpaceNode and MirrorLink status (the operator's is
#: ``trustspace-operator``).
FIELD_MANAGER = "trustspace-collector"


class StatusSink(Protocol):
    def write(self, node: str, update: NodeUpdate) -> None: ...


class NullSink:
    def write(self, node: str, update: NodeUpdate) -> None:
        pass


class FileSink:
    """One JSON line per part of an update: ``audit``, ``heartbeat``, ``AuditStreaming``."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()

    def write(self, node: str, update: NodeUpdate) -> None:
        lines: list[dict[str, Any]] = []
        if update.progress is not None:
            lines.append({"node": node, "type": "audit", **update.progress.__dict__})
        if update.heartbeat is not None:
            hb = update.heartbeat
            lines.append(
                {
                    "node": node,
                    "type": "heartbeat",
                    "at": hb.at,
                    "bufferedRecords": hb.buffered_records,
                    "backpressure": hb.backpressure,
                    "policyHash": hb.policy_hash,
                    "trustBundleHash": hb.trust_bundle_hash,
                }
            )
        for s in update.streaming:
            lines.append(
                {
                    "node": node,
                    "type": "AuditStreaming",
                    "status": "True" if s.ok else "False",
                    "reason": s.reason,
                    "message": s.message,
                }
            )
        with self._lock, self._path.open("a") as f:
            for line in lines:
                f.write(json.dumps(line, sort_keys=True) + "\n")


class EventPoster(Protocol):
    def post(self, obj: Obj, type_: Any, reason: str, message: str) -> None: ...


class KubernetesSink:
    """Server-side apply on ``dataspacenodes/<node>/status`` in `namespace`.

    The first write for a node reads the object once (to keep ``lastTransitionTime`` of a
    condition whose status does not change, and the values the collector wrote before it
    restarted); later writes use what the last apply returned.
    """

    def __init__(
        self,
        namespace: str,
        kube: Kube,
        events: EventPoster | None = None,
        clock: Callable[[], dt.datetime] = clock.now,
    ) -> None:
        from trustspace_operator.events import EventRecorder

        self._namespace = namespace
        self._kube = kube
        self._events: EventPoster = events or EventRecorder(kube, component=FIELD_MANAGER)
        self._clock = clock
        self._nodes: dict[str, NodeView] = {}
        self._lock = threading.Lock()
        self.writes = 0
        """Status applies sent (tests and metrics)."""

    def _view(self, node: str) -> NodeView | None:
        view = self._nodes.get(node)
        if view is not None:
            return view
        try:
            obj = self._kube.get(k.DATASPACENODE, node, self._namespace)
        except (ApiError, Unreachable) as exc:
            log.warning("cannot read DataSpaceNode %s/%s: %s", self._namespace, node, exc)
            return None
        if obj is None:
            log.warning("no DataSpaceNode %s/%s: status not written", self._namespace, node)
            return None
        view = self._nodes[node] = NodeView.from_object(obj)
        return view

    def write(self, node: str, update: NodeUpdate) -> None:
        with self._lock:
            view = self._view(node)
            if view is None:
                return
            failures = view.merge(update, self._clock())
            try:
                self.writes += 1
                live = self._kube.apply_status(
                    k.DATASPACENODE,
                    node,
                    self._namespace,
                    view.status(),
                    field_manager=FIELD_MANAGER,
                )
                view.meta = live.get("metadata") or view.meta
            except NotFound:
                # Deleted (or not created yet): forget it; a new object starts fresh.
                self._nodes.pop(node, None)
                log.warning(
                    "DataSpaceNode %s/%s is gone: status not written", self._namespace, node
                )
                return
            except (ApiError, Unreachable) as exc:
                # The view keeps the state: the next write carries it.
                log.warning("status apply for %s/%s failed: %s", self._namespace, node, exc)
            obj = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": DATASPACENODE_KIND,
                "metadata": {"namespace": self._namespace, "name": node, **view.meta},
            }
            for failure in failures:
                self._events.post(obj, "Warning", failure.reason, failure.message)
