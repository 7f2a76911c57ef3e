"""The operator's parts built and wired in one place: the node controller, the space
controller, the watch of owned objects, and the periodic sweep and phase gauge."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from trustspace.kube import Kube, Obj
from trustspace_operator.config import OperatorConfig
from trustspace_operator.events import EventRecorder
from trustspace_operator.metrics import METRICS
from trustspace_operator.nodes import NodeController
from trustspace_operator.peers import SpaceDirectory
from trustspace_operator.space import NodeFeed, SpaceController
from trustspace_operator.targets import Targets
from trustspace_operator.watch import OwnedWatcher

log = logging.getLogger(__name__)
PHASES = ("Pending", "Provisioning", "Ready", "Degraded", "Failed")


class Operator:
    def __init__(self, hub: Kube, config: OperatorConfig) -> None:
        targets = Targets(hub)
        events = EventRecorder(hub)
        directory = SpaceDirectory(hub)
        ca = Path(config.collector_ca_file).read_text() if config.collector_ca_file else None
        # The space controller calls the node controller back through these; they forward
        # because the node controller is built second (it is given the space controller).
        self.space = SpaceController(
            hub,
            targets,
            nodes=NodeFeed(
                watched=self._watched,
                urgent=self._urgent,
                published=self._published,
                views_changed=self._views_changed,
            ),
            events=events,
            directory=directory,
            namespaces=config.namespaces,
            collector_ca=ca,
            collector_url=config.collector_url,
            collector_tls_secret=config.collector_tls_secret,
            every=max(config.tick, 1.0) * 10,
        )
        self.nodes = NodeController(
            hub, config, space=self.space, events=events, targets=targets, directory=directory
        )
        self.watcher = OwnedWatcher(hub, config.namespaces, self.nodes.enqueue)
        self.tick = config.tick
        self._stop = threading.Event()

    def _watched(self) -> list[Obj] | None:
        return self.nodes.watched()

    def _urgent(self) -> bool:
        return self.nodes.awaiting_publish()

    def _published(self, key_ids: frozenset[str]) -> None:
        self.nodes.bundle_published(key_ids)

    def _views_changed(self, namespace: str, names: list[str]) -> None:
        self.nodes.views_changed(namespace, names)

    def start(self) -> None:
        self.space.start()
        self.space.space_changed()  # a first pass after a restart
        self.watcher.start()
        # One periodic pass over all nodes (rotation due, retries, resync, heartbeats)
        # instead of kopf timers: a thousand timer tasks cost a tenth of the operator's CPU
        # at 1,000 nodes and kept a live body per node inside kopf besides.
        self._every(self.tick, self.nodes.sweep, "node-sweep", "periodic node check failed")
        self._every(15.0, self.gauge_phases, "phase-gauge", "phase gauge failed", first=True)

    def stop(self) -> None:
        self.space.stop()
        self.watcher.stop()
        self._stop.set()

    def gauge_phases(self) -> None:
        """Nodes by phase, from the versions the watch delivered (no listing of every node)."""
        counts = self.nodes.phase_counts()
        for phase in PHASES:
            METRICS.nodes.labels(phase=phase).set(counts.get(phase, 0))

    def _every(
        self, seconds: float, job: Callable[[], object], name: str, failed: str, first: bool = False
    ) -> None:
        def run() -> None:
            if first:
                self._guarded(job, failed)
            while not self._stop.wait(seconds):
                self._guarded(job, failed)

        threading.Thread(target=run, name=name, daemon=True).start()

    @staticmethod
    def _guarded(job: Callable[[], object], failed: str) -> None:
        try:
            job()
        except Exception:  # the next pass retries; the thread must live on
            log.exception(failed)
