"""kopf handlers: every path leads to `NodeController` (level-triggered, idempotent).

Handlers return nothing (a return value would land in status) and kopf keeps its progress
and diff-base in annotations, so the structural status schema stays the operator's own.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kopf

from trustspace.api.constants import (
    DATASPACENODE_PLURAL,
    GROUP,
    MIRRORLINK_PLURAL,
    TRANSFERPOLICY_PLURAL,
    VERSION,
)
from trustspace.kube import FIELD_MANAGER, Kube, Unreachable
from trustspace.kube import kinds as k
from trustspace_operator import render
from trustspace_operator.bundle import APPROVERS_LABEL, BundlePublisher
from trustspace_operator.config import CONFIG
from trustspace_operator.metrics import METRICS
from trustspace_operator.nodes import NodeController
from trustspace_operator.targets import Targets

log = logging.getLogger(__name__)
NODES = (GROUP, VERSION, DATASPACENODE_PLURAL)
MANAGED = {"app.kubernetes.io/managed-by": render.MANAGED_BY}
_state: dict[str, Any] = {}


def plain(value: Any) -> Any:
    """A deep copy of a kopf body as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(key): plain(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def controller() -> NodeController:
    ctl: NodeController = _state["controller"]
    return ctl


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix="kopf.trustspace.io"
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="kopf.trustspace.io", key="last-handled-configuration"
    )
    settings.persistence.finalizer = "trustspace.io/cleanup"
    # Users read our own Events; kopf's are for handler failures only.
    settings.posting.level = logging.WARNING
    settings.execution.max_workers = CONFIG.workers
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    # One line per handled watch event is noise at this scale; failures still log.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    if "controller" not in _state:
        hub = Kube.from_kubeconfig(CONFIG.kubeconfig)
        targets = Targets(hub)
        ctl = NodeController(hub, CONFIG, targets=targets)
        ca = Path(CONFIG.collector_ca_file).read_text() if CONFIG.collector_ca_file else None
        publisher = BundlePublisher(
            hub,
            targets,
            namespaces=CONFIG.namespaces,
            collector_ca=ca,
            every=max(CONFIG.tick, 1.0) * 10,
        )
        ctl.publisher = publisher
        publisher.on_published = ctl.bundle_published
        publisher.directory = ctl.directory
        publisher.on_views_changed = ctl.views_changed
        publisher.events = ctl.events
        publisher.start()
        publisher.key_material_changed()  # a first pass after a restart
        _state["controller"] = ctl
        _state["publisher"] = publisher
    _start_phase_gauge(controller().hub)


@kopf.on.cleanup()
def shutdown(**_: Any) -> None:
    publisher = _state.get("publisher")
    if publisher is not None:
        publisher.stop()
    gauge = _state.get("gauge")
    if gauge is not None:
        gauge.set()


@kopf.on.resume(*NODES)
@kopf.on.create(*NODES)
@kopf.on.update(*NODES)
def node_changed(body: kopf.Body, reason: str, **_: Any) -> None:
    controller().reconcile(plain(body), cause=str(reason))


@kopf.timer(*NODES, interval=CONFIG.tick, initial_delay=CONFIG.tick, sharp=False)
async def node_timer(body: kopf.Body, **_: Any) -> None:
    # Decided on the event loop: a thousand timers would otherwise cost a thread hop each
    # per tick, mostly to learn that nothing is due.
    ctl = controller()
    if ctl.due(body):
        meta = body["metadata"]
        await asyncio.to_thread(
            ctl.reconcile,
            {"metadata": {"namespace": meta["namespace"], "name": meta["name"]}},
            cause="timer",
        )


def _changes_only(event: kopf.RawEvent, **_: Any) -> bool:
    """Skip the initial listing and our own creations before kopf spends a thread on them."""
    return event.get("type") not in (None, "ADDED")


@kopf.on.event(GROUP, VERSION, TRANSFERPOLICY_PLURAL, id="policy-changed")
@kopf.on.event(GROUP, VERSION, MIRRORLINK_PLURAL, id="link-changed")
def policy_changed(event: kopf.RawEvent, **_: Any) -> None:
    """A TransferPolicy or MirrorLink changed: recompile, redistribute, re-check links."""
    if event.get("type") is not None:
        _state["publisher"].key_material_changed()


@kopf.on.event("", "v1", "configmaps", labels={"trustspace.io/profiles": "true"})
@kopf.on.event("", "v1", "configmaps", labels={APPROVERS_LABEL: "true"}, id="approvers-changed")
def profiles_changed(event: kopf.RawEvent, **_: Any) -> None:
    """Jurisdiction profile overrides (R4) or the approvers' keys changed: republish now."""
    if event.get("type") is not None:
        _state["publisher"].key_material_changed()


@kopf.on.delete(*NODES)
def node_deleted(body: kopf.Body, **_: Any) -> None:
    try:
        controller().cleanup(plain(body))
    except Unreachable as exc:
        raise kopf.TemporaryError(f"edge cluster unreachable: {exc}", delay=15) from exc


def _owned_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    """An object the operator owns changed: repair drift, or pick up workload readiness."""
    kind = body.get("kind")
    etype = event.get("type")
    if etype in (None, "ADDED"):  # the initial listing, or our own creation coming back
        return
    meta = body.get("metadata", {})
    labels = meta.get("labels") or {}
    node_name = labels.get(render.NODE_LABEL)
    node_ns = labels.get(render.NODE_NAMESPACE_LABEL)
    if not node_name or not node_ns:
        return
    if etype == "MODIFIED" and kind != "StatefulSet" and _last_writer(meta) == FIELD_MANAGER:
        return  # our own write coming back
    ctl = controller()
    node = ctl.hub.get(k.DATASPACENODE, node_name, node_ns)
    if node is None or node["metadata"].get("deletionTimestamp"):
        return
    ctl.reconcile(node, cause="drift" if kind != "StatefulSet" else "workload")


def _last_writer(meta: Mapping[str, Any]) -> str | None:
    fields = meta.get("managedFields") or []
    latest = max(fields, key=lambda f: f.get("time") or "", default=None)
    return latest.get("manager") if latest else None


for _group, _version, _plural in (
    ("", "v1", "serviceaccounts"),
    ("", "v1", "configmaps"),
    ("", "v1", "services"),
    ("", "v1", "secrets"),
    ("rbac.authorization.k8s.io", "v1", "roles"),
    ("rbac.authorization.k8s.io", "v1", "rolebindings"),
    ("apps", "v1", "statefulsets"),
):
    kopf.on.event(
        _group, _version, _plural, labels=MANAGED, id=f"owned-{_plural}", when=_changes_only
    )(_owned_event)


@kopf.on.probe(id="nodes")
def probe(**_: Any) -> int:
    return len(_state.get("phases", {}))


def _start_phase_gauge(hub: Kube, every: float = 15.0) -> None:
    if "gauge" in _state:
        return
    stop = threading.Event()
    _state["gauge"] = stop

    def run() -> None:
        while True:
            counts: dict[str, int] = {}
            try:
                for node in hub.list(k.DATASPACENODE):
                    phase = (node.get("status") or {}).get("phase") or "Pending"
                    counts[phase] = counts.get(phase, 0) + 1
            except Exception as exc:  # a gauge must never take the operator down
                log.debug("phase gauge: %s", exc)
            else:
                for phase in ("Pending", "Provisioning", "Ready", "Degraded", "Failed"):
                    METRICS.nodes.labels(phase=phase).set(counts.get(phase, 0))
                _state["phases"] = counts
            if stop.wait(every):
                return

    threading.Thread(target=run, name="phase-gauge", daemon=True).start()
