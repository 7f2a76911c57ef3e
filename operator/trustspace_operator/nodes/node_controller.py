"""The node controller: orchestrates one reconcile of a DataSpaceNode, level-triggered and
idempotent. Its parts: the queue (queue.py), what it remembers per node (memory.py), when a
node needs a look (schedule.py), the owned objects (objects.py), the key steps
(key_steps.py), the status (status.py, written by status_write.py) and cleanup (cleanup.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trustspace import clock
from trustspace.api.conditions import Condition, find_condition, set_condition
from trustspace.api.constants import ConditionStatus, NodeConditionType, NodePhase, NodeReason
from trustspace.api.dataspacenode import DataSpaceNode
from trustspace.kube import ApiError, Kube, Obj, Unreachable
from trustspace.kube import kinds as k
from trustspace_operator import keys
from trustspace_operator.config import OperatorConfig
from trustspace_operator.events import EventRecorder
from trustspace_operator.metrics import METRICS
from trustspace_operator.nodes import schedule, status
from trustspace_operator.nodes.cleanup import remove_owned
from trustspace_operator.nodes.key_steps import KeySteps
from trustspace_operator.nodes.memory import Backoff, NodeKey, NodeMemories
from trustspace_operator.nodes.objects import OwnedObjects
from trustspace_operator.nodes.queue import CoalescingQueue, back_off
from trustspace_operator.nodes.space_hook import NoSpace, SpaceHook
from trustspace_operator.nodes.status_write import StatusWriter
from trustspace_operator.peers import SpaceDirectory
from trustspace_operator.targets import Targets, TargetUnavailable
from trustspace_operator.tls.gateway import GatewayTls

log = logging.getLogger(__name__)
#: Causes that cannot have changed the node's objects when the spec is unchanged.
_KEYS_ONLY_CAUSES = frozenset({"update", "published", "timer"})


def now_utc() -> dt.datetime:
    return clock.now().replace(microsecond=0)


@dataclass
class Result:
    """What one reconcile did."""

    phase: NodePhase
    retry_in: float | None = None
    changed: list[str] = field(default_factory=list)


class NodeController:
    def __init__(
        self,
        hub: Kube,
        config: OperatorConfig,
        *,
        space: SpaceHook | None = None,
        events: EventRecorder | None = None,
        targets: Targets | None = None,
        directory: SpaceDirectory | None = None,
        clock: Callable[[], dt.datetime] = now_utc,
    ) -> None:
        self.hub = hub
        self.config = config
        self.space: SpaceHook = space or NoSpace()
        self.events = events or EventRecorder(hub)
        self.targets = targets or Targets(hub)
        self.clock = clock
        #: Peers and mounted Secrets of each node's gateway; the space controller keeps it fresh.
        self.directory = directory or SpaceDirectory(hub)
        self.memories = NodeMemories()
        self.queue = CoalescingQueue(self._run_queued, workers=config.workers)
        self.objects = OwnedObjects(config, self.events, self.directory, GatewayTls(hub))
        self.key_steps = KeySteps(hub, config, self.events, self.space)
        self.status = StatusWriter(hub, self.space)

    # ----- what watch events, the sweep and the space controller call ----------------------
    def observe(self, body: Mapping[str, Any]) -> Obj:
        """Remember the node as a watch event just showed it, less its managedFields (a
        third of a node's size, and nothing here reads them); returns what is kept. Nothing
        modifies a watched body, so the queue and the space controller share it without
        copies (a thousand nodes created at once were a thousand deep copies in the queue)."""
        meta = body["metadata"]
        kept = without_managed_fields(dict(body))
        self.memories((meta["namespace"], meta["name"])).body = kept
        return kept

    def wants(self, body: Mapping[str, Any]) -> str | None:
        """Whether a watched version of the node asks for a reconcile, and why (no I/O)."""
        meta = body["metadata"]
        return schedule.wants(body, self.memories.get((meta["namespace"], meta["name"])))

    def node_changed(self, body: Obj) -> None:
        """A watch event of the node: queue a reconcile when it asks for one."""
        cause = self.wants(body)
        if cause is not None:
            meta = body["metadata"]
            self.enqueue(meta["namespace"], meta["name"], cause, body)

    def enqueue(self, namespace: str, name: str, cause: str, body: Obj | None = None) -> None:
        self.queue.enqueue((namespace, name), cause, body)

    def sweep(self) -> int:
        """The periodic check of every known node, as one pass rather than a timer task per
        node: queue those `schedule.due` says need a look. Returns how many were queued."""
        queued = 0
        now_m, now = time.monotonic(), self.clock()
        for key, body in self.memories.bodies():
            if body["metadata"].get("deletionTimestamp"):
                continue  # the delete handler retries on its own
            if self.queue.busy(key):
                continue
            cause = schedule.due(body, self.memories(key), self.config, now_m, now)
            if cause is not None:
                self.enqueue(*key, cause)
                queued += 1
        return queued

    def watched(self) -> list[Obj]:
        """The nodes as their watch events last showed them (read-only; for the space)."""
        return [dict(body) for _, body in self.memories.bodies()]

    def phase_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, body in self.memories.bodies():
            phase = str((body.get("status") or {}).get("phase") or "Pending")
            counts[phase] = counts.get(phase, 0) + 1
        return counts

    def node_count(self) -> int:
        """How many nodes the watch has shown this process (the `nodes` probe)."""
        return sum(1 for _ in self.memories.bodies())

    def bundle_published(self, key_ids: frozenset[str]) -> None:
        """The trust bundle now announces these keys: promote the nodes that waited for it
        at once rather than at their next sweep."""
        for namespace, name in self.key_steps.published(key_ids):
            self.enqueue(namespace, name, "published")

    def awaiting_publish(self) -> bool:
        """Whether a staged key waits for the trust bundle to announce it."""
        return self.key_steps.awaiting_publish()

    def views_changed(self, namespace: str, names: list[str]) -> None:
        """These nodes' peers or Secrets changed (a MirrorLink or an endpoint moved):
        re-render their agent config now rather than at the next resync."""
        for name in names:
            self.enqueue(namespace, name, "peers")

    def forget(self, namespace: str, name: str) -> None:
        self.memories.forget((namespace, name))
        self.queue.forget((namespace, name))

    def cleanup(self, body: Obj) -> None:
        """Remove what the node owns in its cluster (owner references cover only local,
        same-namespace objects; this covers the rest, remote clusters included)."""
        node = DataSpaceNode.from_body(body)
        with self.queue.lock_for((node.namespace, node.name)):
            remove_owned(body, node, self.targets, self.events)
        self.forget(node.namespace, node.name)
        self.space.space_changed()

    # ----- one reconcile -------------------------------------------------------------------
    def reconcile(self, body: Obj, *, cause: str = "reconcile", fresh: bool = False) -> Result:
        """One reconcile of the node. `fresh`: `body` came from a watch event no older than
        anything this process did to the node; otherwise the node is read first."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        with self.queue.lock_for(key):
            return self._reconcile_held(key, body, cause, fresh)

    def _run_queued(self, key: NodeKey, cause: str, body: Obj | None) -> None:
        """The queue's callback (the node's lock held)."""
        if body is None:
            body = {"metadata": {"namespace": key[0], "name": key[1]}}
            self._reconcile_held(key, body, cause, fresh=False)
        elif self.wants(body) is not None:  # an earlier reconcile may have done it all
            self._reconcile_held(key, body, cause, fresh=True)

    def _reconcile_held(self, key: NodeKey, body: Obj, cause: str, fresh: bool) -> Result:
        started = time.monotonic()
        # Sweep and drift callers hold a copy that may predate our last status write;
        # decisions such as "drift or spec change" need the live object.
        live: Obj | None = body
        if not fresh:
            # The watched node stands in for a read only when it is exactly what our
            # last status write produced; anything newer (a collector heartbeat) is read.
            cached = self._as_last_written(key) if cause in _KEYS_ONLY_CAUSES else None
            live = cached or self.hub.get(k.DATASPACENODE, key[1], key[0])
        if live is None or live["metadata"].get("deletionTimestamp"):
            return Result(NodePhase.PENDING)
        try:
            return self._reconcile(live, cause)
        finally:
            METRICS.reconcile_seconds.observe(time.monotonic() - started)
            self.memories(key).last_full = time.monotonic()

    def _as_last_written(self, key: NodeKey) -> Obj | None:
        """The watched node if it is exactly the version our last status write produced:
        then nothing newer can exist but what a watch event is still bringing, which queues
        its own reconcile. Saves a read per key step (a promotion after the bundle pass)."""
        memory = self.memories.get(key)
        if memory is None or memory.body is None or not memory.written_rv:
            return None
        if memory.body["metadata"].get("resourceVersion") == memory.written_rv:
            return memory.body
        return None

    def _reconcile(self, body: Obj, cause: str) -> Result:
        node = DataSpaceNode.from_body(body)
        key = (node.namespace, node.name)
        memory = self.memories(key)
        now = self.clock()
        conditions = [
            Condition.model_validate(c) for c in (body.get("status") or {}).get("conditions", [])
        ]
        METRICS.reconciles.labels(cause=cause).inc()
        try:
            target = self.targets.for_node(node)
            settled = (body.get("status") or {}).get("observedGeneration") == node.generation
            keys_only = settled and cause in _KEYS_ONLY_CAUSES
            #: A first provisioning tells its story in one Event (objects and key together).
            first: list[str] = []
            if keys_only:
                # Nothing in the spec moved: the objects are watched (local) or resynced
                # (remote) anyway, so a key or annotation change need not re-read them.
                changed: list[str] = []
                live_objects: dict[str, Obj] = {}
            else:
                changed, live_objects = self.objects.apply(body, node, target, first)
                if node.spec.capabilities.gateway.enabled:
                    self.objects.ensure_gateway_tls(body, node, target, now)
            secret = self.key_steps.cached(body, node, target, memory, now) if keys_only else None
            if secret is None:
                secret = self.key_steps.run(body, node, target, memory, now, first)
            if first:
                self.events.post(body, "Normal", "Provisioned", "; ".join(first))
            memory.secret = without_managed_fields(secret)
        except TargetUnavailable as exc:
            return self._degraded(body, node, conditions, exc.reason, exc.message)
        except Unreachable as exc:
            return self._degraded(
                body,
                node,
                conditions,
                NodeReason.REMOTE_CLUSTER_UNREACHABLE,
                f"cannot reach the node's cluster: {exc}; retrying with backoff",
            )
        except keys.KeySecretCorrupt as exc:
            METRICS.errors.labels(kind="key_secret_corrupt").inc()
            conditions = set_condition(
                conditions,
                NodeConditionType.KEY_READY,
                False,
                NodeReason.KEY_MISSING,
                f"the key Secret is unreadable ({exc}); it is never overwritten: fix or delete "
                "it to have a new key issued",
                observed_generation=node.generation,
                now=now,
            )
            self._write_status(body, node, conditions, NodePhase.FAILED, None)
            return Result(NodePhase.FAILED, retry_in=self.config.resync)
        except ApiError as exc:
            METRICS.errors.labels(kind="api").inc()
            return self._degraded(
                body, node, conditions, "ApiError", f"the API server refused a request: {exc}"
            )

        was_degraded = find_condition(conditions, NodeConditionType.DEGRADED)
        if was_degraded is not None and was_degraded.status == ConditionStatus.TRUE:
            self.events.post(
                body, "Normal", "ClusterReachable", f"{target.description} is reachable again"
            )
        memory.backoff = None
        state = keys.read_state(secret)
        conditions, agent_status = status.reconciled_conditions(
            body,
            node,
            live_objects.get("StatefulSet"),
            target.description,
            state,
            conditions,
            self.space.current_hash(node.namespace),
            self.config,
            now,
        )
        phase = status.phase(conditions)
        self._write_status(body, node, conditions, phase, state, agent_status=agent_status)
        memory.observed = node.generation
        memory.taken_request = schedule.rotation_request(body)
        METRICS.key_age.labels(namespace=node.namespace, node=node.name).set(
            (now - state.not_before).total_seconds()
        )
        return Result(phase, changed=changed)

    def _degraded(
        self, body: Obj, node: DataSpaceNode, conditions: list[Condition], reason: str, message: str
    ) -> Result:
        previous = find_condition(conditions, NodeConditionType.DEGRADED)
        if previous is None or previous.status != ConditionStatus.TRUE or previous.reason != reason:
            self.events.post(body, "Warning", reason, message)
        METRICS.errors.labels(kind=reason).inc()
        conditions = status.degraded_conditions(
            conditions, reason, message, node.generation, self.clock()
        )
        memory = self.memories((node.namespace, node.name))
        memory.backoff = memory.backoff or Backoff()
        delay = back_off(memory.backoff, self.config.max_backoff, time.monotonic())
        self._write_status(body, node, conditions, NodePhase.DEGRADED, None, keep_keys=True)
        log.warning(
            "node %s/%s degraded: %s",
            node.namespace,
            node.name,
            message,
            extra={"node": node.name, "reason": reason},
        )
        return Result(NodePhase.DEGRADED, retry_in=delay)

    def _write_status(
        self,
        body: Obj,
        node: DataSpaceNode,
        conditions: list[Condition],
        phase: NodePhase,
        state: keys.KeyState | None,
        *,
        keep_keys: bool = False,
        agent_status: Obj | None = None,
    ) -> None:
        doc = status.status_document(
            body.get("status") or {},
            node,
            conditions,
            phase,
            state,
            keep_keys=keep_keys,
            agent_status=agent_status,
        )
        version = self.status.write(body, node, doc)
        if version:
            self.memories((node.namespace, node.name)).written_rv = version


def without_managed_fields(obj: Obj) -> Obj:
    """A shallow copy without managedFields (half a small object's size); a replace that
    omits them leaves the server's unchanged."""
    meta = {key: v for key, v in obj.get("metadata", {}).items() if key != "managedFields"}
    return {**obj, "metadata": meta}
