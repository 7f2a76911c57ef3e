"""kopf handlers: every path leads to `NodeController` (level-triggered, idempotent).

Nodes are watched with a raw event handler, not kopf's create/update/resume handlers: the
controller knows what it has already done, so it needs no diff-base patched onto every node,
and a burst of events for one node becomes one queued reconcile. kopf still runs the delete
handler behind its finalizer (progress in annotations, so the status schema stays ours), for
the nodes whose objects owner references cannot reach (another cluster or namespace); the
garbage collector removes the others'. The objects a node owns are watched by
`watch.OwnedWatcher`.
"""

from __future__ import annotations

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
from trustspace.api.dataspacenode import PlacementMode
from trustspace.gctuning import settle_heap
from trustspace.kube import Kube, Unreachable
from trustspace_operator import render
from trustspace_operator.bundle import APPROVERS_LABEL, BundlePublisher
from trustspace_operator.config import CONFIG
from trustspace_operator.metrics import METRICS
from trustspace_operator.nodes import NodeController
from trustspace_operator.targets import Targets
from trustspace_operator.watch import OwnedWatcher

log = logging.getLogger(__name__)
NODES = (GROUP, VERSION, DATASPACENODE_PLURAL)
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
    settings.persistence.diffbase_storage = NoDiffBase()
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
            collector_url=CONFIG.collector_url,
            collector_tls_secret=CONFIG.collector_tls_secret,
            every=max(CONFIG.tick, 1.0) * 10,
        )
        ctl.publisher = publisher
        publisher.on_published = ctl.bundle_published
        publisher.urgent = ctl.awaiting_publish
        publisher.watched = ctl.watched
        publisher.directory = ctl.directory
        publisher.on_views_changed = ctl.views_changed
        publisher.events = ctl.events
        publisher.start()
        publisher.key_material_changed()  # a first pass after a restart
        watcher = OwnedWatcher(hub, CONFIG.namespaces, ctl.enqueue)
        watcher.start()
        _state["controller"] = ctl
        _state["publisher"] = publisher
        _state["watcher"] = watcher
    _start_phase_gauge(controller())
    _start_sweeper(controller(), CONFIG.tick)
    settle_heap()


@kopf.on.cleanup()
def shutdown(**_: Any) -> None:
    for part in ("publisher", "watcher"):
        if _state.get(part) is not None:
            _state[part].stop()
    for stop in ("gauge", "sweeper"):
        if _state.get(stop) is not None:
            _state[stop].set()


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf's create/update/resume handlers are not used, so it keeps no diff-base: that
    saves one patch of the node per change, and the watch event the patch causes."""

    def build(
        self, *, body: kopf.Body, extra_fields: Any = None
    ) -> kopf.BodyEssence:  # kopf deep-copied every event's body to build it
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        # The same empty essence as `build`: kopf sees no change (a no-op cause) instead of
        # a creation on every event, which it would log with the whole body formatted.
        return kopf.BodyEssence()

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


@kopf.on.event(*NODES, id="node-event")
async def node_event(event: kopf.RawEvent, **_: Any) -> None:
    """Every watch event of a node, judged on the event loop (no thread hop): most are
    status writes coming back and need nothing. The controller decides from the spec
    generation and the rotation request what it has not yet done (nodes.py `wants`)."""
    ctl = controller()
    body = event["object"]
    if event.get("type") == "DELETED":
        meta = body["metadata"]
        ctl.forget(meta["namespace"], meta["name"])
        # Its keys leave the trust bundle (a node with the finalizer did this in cleanup).
        ctl.publisher.key_material_changed()
        return
    kept = ctl.observe(body)
    if ctl.wants(kept) is not None:
        ctl.node_changed(kept)


def _start_sweeper(ctl: NodeController, every: float) -> None:
    """One periodic pass over all nodes (rotation due, retries, resync, heartbeats) instead
    of kopf timers: a thousand timer tasks cost a tenth of the operator's CPU at 1,000 nodes
    and kept a live body per node inside kopf besides."""
    if "sweeper" in _state:
        return
    stop = threading.Event()
    _state["sweeper"] = stop

    def run() -> None:
        while not stop.wait(every):
            try:
                ctl.sweep()
            except Exception:  # the next pass retries; the thread must live on
                log.exception("periodic node check failed")

    threading.Thread(target=run, name="node-sweep", daemon=True).start()


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


def needs_cleanup(body: kopf.Body, **_: Any) -> bool:
    """Whether deleting the node takes the operator's cleanup, and so kopf's finalizer: not
    when owner references let the garbage collector remove its objects. A finalizer costs
    every new node a patch (a full validation of the node by the API server; about a
    twelfth of the API server's work per node at 1,000 nodes)."""
    placement = (body.get("spec") or {}).get("placement") or {}
    node_ns = str(body["metadata"]["namespace"])
    return not render.collected_with_node(
        str(placement.get("mode", PlacementMode.LOCAL)), placement.get("namespace"), node_ns
    )


@kopf.on.delete(*NODES, when=needs_cleanup)
def node_deleted(body: kopf.Body, **_: Any) -> None:
    try:
        controller().cleanup(plain(body))
    except Unreachable as exc:
        raise kopf.TemporaryError(f"edge cluster unreachable: {exc}", delay=15) from exc


@kopf.on.probe(id="nodes")
def probe(**_: Any) -> int:
    return len(_state.get("phases", {}))


def _start_phase_gauge(ctl: NodeController, every: float = 15.0) -> None:
    """Nodes by phase, from the versions the watch delivered (no listing of every node)."""
    if "gauge" in _state:
        return
    stop = threading.Event()
    _state["gauge"] = stop

    def run() -> None:
        while True:
            counts = ctl.phase_counts()
            for phase in ("Pending", "Provisioning", "Ready", "Degraded", "Failed"):
                METRICS.nodes.labels(phase=phase).set(counts.get(phase, 0))
            _state["phases"] = counts
            if stop.wait(every):
                return

    threading.Thread(target=run, name="phase-gauge", daemon=True).start()
