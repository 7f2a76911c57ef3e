"""Reconciling one DataSpaceNode: objects, keys and status, level-triggered and idempotent.

Every entry point (create, update, resume, timer, a watched object changing) ends in
`NodeController.reconcile`, which makes the node's cluster match the spec, moves the key
lifecycle forward one safe step at a time, and writes the operator's part of the status with
server-side apply (the collector owns the audit and heartbeat parts of the same status).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from trustspace.api.common import parse_duration
from trustspace.api.conditions import Condition, find_condition, set_condition
from trustspace.api.constants import (
    API_VERSION,
    DATASPACENODE_KIND,
    ROTATE_KEY_ANNOTATION,
    ConditionStatus,
    NodeConditionType,
    NodePhase,
    NodeReason,
    Role,
)
from trustspace.api.dataspacenode import DataSpaceNode, RotationPolicy
from trustspace.kube import ApiError, Conflict, Kube, NotFound, Obj, Unreachable
from trustspace.kube import kinds as k
from trustspace_operator import callertokens, keys, render
from trustspace_operator.config import AgentRuntime, OperatorConfig
from trustspace_operator.events import EventRecorder
from trustspace_operator.faults import fault_point
from trustspace_operator.gatewaytls import GatewayTls
from trustspace_operator.metrics import METRICS
from trustspace_operator.peers import SpaceDirectory
from trustspace_operator.targets import Target, Targets, TargetUnavailable

log = logging.getLogger(__name__)
STATUS_MANAGER = "trustspace-operator"
#: Conditions this controller owns; the collector owns AuditStreaming and AuditBackpressure.
OWNED_CONDITIONS = (
    NodeConditionType.READY,
    NodeConditionType.KEY_READY,
    NodeConditionType.AGENT_READY,
    NodeConditionType.POLICY_SYNCED,
    NodeConditionType.DEGRADED,
)
#: Causes that cannot have changed the node's objects when the spec is unchanged.
_KEYS_ONLY_CAUSES = frozenset({"update", "published", "timer"})
CREATED_NAMESPACE_ANNOTATION = "trustspace.io/created-for-node"
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


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def ts(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_subset(desired: Any, actual: Any) -> bool:
    """True when every field we set has that value in the live object (server defaults and
    other managers' fields are ignored)."""
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return False
        return all(key in actual and is_subset(v, actual[key]) for key, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(desired) != len(actual):
            return False
        return all(is_subset(d, a) for d, a in zip(desired, actual, strict=True))
    if isinstance(desired, int | float) and isinstance(actual, int | float):
        return desired == actual
    return bool(desired == actual)


@dataclass
class _Backoff:
    failures: int = 0
    next_try: float = 0.0


@dataclass
class Result:
    """What one reconcile did; handlers turn `retry_in` into a kopf TemporaryError."""

    phase: NodePhase
    retry_in: float | None = None
    changed: list[str] = field(default_factory=list)


class PublishHook(Protocol):
    """Rebuilds the trust bundle when key material changed (bundle.BundlePublisher)."""

    def key_material_changed(self) -> None: ...
    def includes(self, key_id: str) -> bool: ...
    def current_hash(self, namespace: str) -> str | None: ...


class NoPublisher:
    """For a controller without trust-bundle publishing (tests of the reconcile alone)."""

    def key_material_changed(self) -> None:
        return None

    def includes(self, key_id: str) -> bool:
        return True

    def current_hash(self, namespace: str) -> str | None:
        return None


class NodeController:
    def __init__(
        self,
        hub: Kube,
        config: OperatorConfig,
        *,
        events: EventRecorder | None = None,
        targets: Targets | None = None,
        clock: Callable[[], dt.datetime] = now_utc,
    ) -> None:
        self.hub = hub
        self.config = config
        self.events = events or EventRecorder(hub)
        self.targets = targets or Targets(hub)
        self.clock = clock
        self.publisher: PublishHook = NoPublisher()
        #: Peers and mounted Secrets of each node's gateway; the publisher keeps it fresh.
        self.directory = SpaceDirectory(hub)
        self.gateway_tls = GatewayTls(hub)
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._backoff: dict[tuple[str, str], _Backoff] = {}
        self._last_full: dict[tuple[str, str], float] = {}
        self._staged_since: dict[tuple[str, str], float] = {}
        self._awaiting_publish: dict[str, tuple[str, str]] = {}
        #: Nodes waiting for a worker, with the cause and the watched body that queued them;
        #: a node is queued once however many events pile up.
        self._queued: dict[tuple[str, str], tuple[str, Obj | None]] = {}
        #: What this process has already done per node: the generation its status reports,
        #: and the rotation request it has taken up. Watch events that carry older news (our
        #: own writes coming back, kopf's finalizer patch) are then recognised as such.
        self._observed: dict[tuple[str, str], int | None] = {}
        self._taken_request: dict[tuple[str, str], str | None] = {}
        #: The latest watched version of every node, for the periodic sweep (`sweep`).
        self._bodies: dict[tuple[str, str], Obj] = {}
        #: The resourceVersion our last status write of each node produced.
        self._written_rv: dict[tuple[str, str], str] = {}
        #: The key Secret as last read or written (without managedFields), per node.
        self._secrets: dict[tuple[str, str], Obj] = {}
        self._workers = ThreadPoolExecutor(
            max_workers=max(config.workers, 1), thread_name_prefix="reconcile"
        )

    # ----- entry points --------------------------------------------------------------------
    def lock_for(self, namespace: str, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault((namespace, name), threading.Lock())

    def reconcile(self, body: Obj, *, cause: str = "reconcile", fresh: bool = False) -> Result:
        """One reconcile of the node. `fresh`: `body` came from a watch event no older than
        anything this process did to the node; otherwise the node is read first."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        with self.lock_for(*key):
            started = time.monotonic()
            # Timer and drift callers hold a copy that may predate our last status write;
            # decisions such as "drift or spec change" need the live object.
            live: Obj | None = body
            if not fresh:
                # The watched node stands in for a read only when it is exactly what our
                # last status write produced; anything newer (a collector heartbeat) is read.
                cached = self._as_last_written(key) if cause in _KEYS_ONLY_CAUSES else None
                live = cached or self.hub.get(k.DATASPACENODE, meta["name"], meta["namespace"])
            if live is None or live["metadata"].get("deletionTimestamp"):
                return Result(NodePhase.PENDING)
            try:
                return self._reconcile(live, cause)
            finally:
                METRICS.reconcile_seconds.observe(time.monotonic() - started)
                self._last_full[key] = time.monotonic()

    def wants(self, body: Mapping[str, Any]) -> str | None:
        """Whether a watched version of the node asks for a reconcile, and why (no I/O).

        Status-only changes (ours coming back, the collector's heartbeats) do not: the
        timer looks at those. A generation or rotation request this process has already
        taken up does not either."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        if meta.get("deletionTimestamp"):
            return None  # the delete handler's business
        status = body.get("status") or {}
        generation = meta.get("generation")
        if key not in self._last_full:
            return "create" if status.get("observedGeneration") is None else "resume"
        if status.get("observedGeneration") != generation and self._observed.get(key) != generation:
            return "create" if status.get("observedGeneration") is None else "update"
        request = self.rotation_request(body)
        if request is not None and self._taken_request.get(key) != request:
            return "update"
        return None

    def _as_last_written(self, key: tuple[str, str]) -> Obj | None:
        """The watched node if it is exactly the version our last status write produced:
        then nothing newer can exist but what a watch event is still bringing, which queues
        its own reconcile. Saves a read per key step (a promotion after the bundle pass)."""
        body = self._bodies.get(key)
        written = self._written_rv.get(key)
        if body is not None and written and body["metadata"].get("resourceVersion") == written:
            return body
        return None

    def observe(self, body: Mapping[str, Any]) -> Obj:
        """Remember the node as a watch event just showed it, less its managedFields (a
        third of a node's size, and nothing here reads them); returns what is kept. Nothing
        modifies a watched body, so the queue and the publisher share it without copies (a
        thousand nodes created at once were a thousand deep copies waiting in the queue)."""
        meta = body["metadata"]
        kept = _without_managed_fields(dict(body))
        self._bodies[(meta["namespace"], meta["name"])] = kept
        return kept

    def sweep(self) -> int:
        """The periodic check of every known node, as one pass rather than a timer task per
        node: queue those `due` says need a look. Returns how many were queued."""
        queued = 0
        for (namespace, name), body in list(self._bodies.items()):
            if body["metadata"].get("deletionTimestamp"):
                continue  # the delete handler retries on its own
            cause = self.due(body)
            if cause is not None:
                self.enqueue(namespace, name, cause)
                queued += 1
        return queued

    def watched(self) -> list[Obj]:
        """The nodes as their watch events last showed them (read-only; for the publisher)."""
        return [dict(body) for body in list(self._bodies.values())]

    def phase_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for body in list(self._bodies.values()):
            phase = str((body.get("status") or {}).get("phase") or "Pending")
            counts[phase] = counts.get(phase, 0) + 1
        return counts

    def node_changed(self, body: Obj) -> None:
        """A watch event of the node: queue a reconcile when it asks for one."""
        cause = self.wants(body)
        if cause is not None:
            meta = body["metadata"]
            self.enqueue(meta["namespace"], meta["name"], cause, body)

    def enqueue(self, namespace: str, name: str, cause: str, body: Obj | None = None) -> None:
        """Reconcile the node soon on a worker thread. A node already waiting is not queued
        again: the one reconcile sees every change so far. `body`: the node as a watch event
        just delivered it (saves a read); without one, the node is read first."""
        key = (namespace, name)
        with self._locks_guard:
            waiting = self._queued.get(key)
            if waiting is not None:
                if waiting[1] is not None:  # keep the newest watched body, or read afresh
                    self._queued[key] = (waiting[0], body)
                return
            self._queued[key] = (cause, body)
        self._workers.submit(self._run_queued, key)

    def _run_queued(self, key: tuple[str, str]) -> None:
        with self._locks_guard:
            # Dequeued before it runs: a change during the reconcile queues another.
            cause, body = self._queued.pop(key)
        try:
            if body is not None:
                # Queued while an earlier reconcile ran? Then that one may have done it all.
                with self.lock_for(*key):
                    if self.wants(body) is None:
                        return
                self.reconcile(body, cause=cause, fresh=True)
            else:
                self.reconcile({"metadata": {"namespace": key[0], "name": key[1]}}, cause=cause)
        except Exception:  # the timer retries; a worker thread must not die silently
            log.exception("reconcile of %s/%s (%s) failed", key[0], key[1], cause)

    def tick(self, body: Mapping[str, Any]) -> Result | None:
        """The periodic check: a reconcile when due (resync, backoff expiry, rotation, grace
        expiry, heartbeat staleness); otherwise nothing, and no API call."""
        cause = self.due(body)
        if cause is None:
            return None
        meta = body["metadata"]
        return self.reconcile(
            {"metadata": {"namespace": meta["namespace"], "name": meta["name"]}}, cause=cause
        )

    def due(self, body: Mapping[str, Any]) -> str | None:
        """Whether the timer should reconcile now, and why: `resync` re-reads every object,
        `timer` only the keys (the objects are watched or resynced). No I/O, cheap enough
        for the event loop; `body` may be kopf's read-only view."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        if key in self._queued or self.lock_for(*key).locked():
            return None
        return self._due(body, key)

    def bundle_published(self, key_ids: frozenset[str]) -> None:
        """The trust bundle now announces these keys: promote the nodes that waited for it
        at once rather than at their next tick."""
        with self._locks_guard:
            ready = [
                self._awaiting_publish.pop(kid)
                for kid in list(self._awaiting_publish)
                if kid in key_ids
            ]
        for namespace, name in ready:
            self.enqueue(namespace, name, "published")

    def awaiting_publish(self) -> bool:
        """Whether a staged key waits for the trust bundle to announce it."""
        return bool(self._awaiting_publish)

    def views_changed(self, namespace: str, names: list[str]) -> None:
        """These nodes' peers or Secrets changed (a MirrorLink or an endpoint moved):
        re-render their agent config now rather than at the next resync."""
        for name in names:
            self.enqueue(namespace, name, "peers")

    def forget(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        for table in (
            self._backoff,
            self._last_full,
            self._staged_since,
            self._locks,
            self._observed,
            self._taken_request,
            self._bodies,
            self._secrets,
            self._written_rv,
        ):
            table.pop(key, None)

    # ----- the reconcile -------------------------------------------------------------------
    def _reconcile(self, body: Obj, cause: str) -> Result:
        node = DataSpaceNode.from_body(body)
        key = (node.namespace, node.name)
        now = self.clock()
        status = dict(body.get("status") or {})
        conditions = [Condition.model_validate(c) for c in status.get("conditions", [])]
        gen = node.generation
        METRICS.reconciles.labels(cause=cause).inc()

        try:
            target = self.targets.for_node(node)
            status_now = body.get("status") or {}
            settled = status_now.get("observedGeneration") == node.generation
            keys_only = settled and cause in _KEYS_ONLY_CAUSES
            #: A first provisioning tells its story in one Event (objects and key together).
            first: list[str] = []
            if keys_only:
                # Nothing in the spec moved: the objects are watched (local) or resynced
                # (remote) anyway, so a key or annotation change need not re-read them.
                changed: list[str] = []
                live_objects: dict[str, Obj] = {}
            else:
                changed, live_objects = self._apply_objects(body, node, target, first)
                if node.spec.capabilities.gateway.enabled:
                    self._gateway_tls(body, node, target, now)
            secret = self._keys_cached(body, node, target, now) if keys_only else None
            if secret is None:
                secret = self._keys(body, node, target, now, first)
            if first:
                self.events.post(body, "Normal", "Provisioned", "; ".join(first))
            self._secrets[key] = _without_managed_fields(secret)
        except TargetUnavailable as exc:
            return self._degraded(body, node, conditions, exc.reason, exc.message, key)
        except Unreachable as exc:
            return self._degraded(
                body,
                node,
                conditions,
                NodeReason.REMOTE_CLUSTER_UNREACHABLE,
                f"cannot reach the node's cluster: {exc}; retrying with backoff",
                key,
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
                observed_generation=gen,
                now=now,
            )
            self._write_status(body, node, conditions, NodePhase.FAILED, None, now)
            return Result(NodePhase.FAILED, retry_in=self.config.resync)
        except ApiError as exc:
            METRICS.errors.labels(kind="api").inc()
            return self._degraded(
                body, node, conditions, "ApiError", f"the API server refused a request: {exc}", key
            )

        was_degraded = find_condition(conditions, NodeConditionType.DEGRADED)
        if was_degraded is not None and was_degraded.status == ConditionStatus.TRUE:
            self.events.post(
                body, "Normal", "ClusterReachable", f"{target.description} is reachable again"
            )
        self._backoff.pop(key, None)
        state = keys.read_state(secret)
        sts = live_objects.get("StatefulSet")
        conditions, agent_status = self._conditions(
            body, node, sts, target.description, state, conditions, now
        )
        phase = self._phase(conditions, changed)
        self._write_status(body, node, conditions, phase, state, now, agent_status=agent_status)
        self._observed[key] = node.generation
        self._taken_request[key] = self.rotation_request(body)
        METRICS.key_age.labels(namespace=node.namespace, node=node.name).set(
            (now - state.not_before).total_seconds()
        )
        return Result(phase, changed=changed)

    # ----- objects -------------------------------------------------------------------------
    def _apply_objects(
        self, body: Obj, node: DataSpaceNode, target: Target, first: list[str]
    ) -> tuple[list[str], dict[str, Obj]]:
        """Make the node's objects match; returns what changed and the live objects by kind.
        A first provisioning's note goes to `first` (posted with the key's)."""
        kube = target.kube
        changed: list[str] = []
        live_objects: dict[str, Obj] = {}
        ns = render.target_namespace(node)
        if ns != node.namespace or target.remote:
            self._ensure_namespace(kube, node, ns)
        provisioned_before = body.get("status", {}).get("observedGeneration") is not None
        spec_changed = body.get("status", {}).get("observedGeneration") != node.generation
        digests = self._caller_tokens(body, node, kube, provisioned_before, spec_changed, first)
        desired = render.desired_objects(
            node,
            image=self.config.agent_image,
            collector_url=self.config.collector_url,
            gateway=self.directory.view(node.namespace, node.name),
            caller_digests=digests,
        )
        for obj in desired:
            kind = k.kind_of(obj)
            name = obj["metadata"]["name"]
            # A first provisioning creates without looking: the reads would double the
            # requests when a thousand nodes arrive at once. A create costs the API server
            # two thirds of a server-side apply (no YAML body, no merge of field sets).
            live = kube.get(kind, name, ns) if provisioned_before else None
            if live is None and not provisioned_before:
                try:
                    live_objects[obj["kind"]] = kube.create(obj)
                    changed.append(f"{obj['kind']} {ns}/{name}")
                    continue
                except Conflict:  # there already (a restart before the status was written)
                    live = kube.get(kind, name, ns)
            if live is not None and is_subset(obj, live):
                live_objects[obj["kind"]] = live
                continue
            if live is not None:
                # What a create set must be the apply's, or what it leaves out would stay.
                kube.claim_for_apply(live)
            live_objects[obj["kind"]] = kube.apply(obj)
            what = f"{obj['kind']} {ns}/{name}"
            changed.append(what)
            if provisioned_before and not spec_changed:
                verb = "recreated" if live is None else "restored"
                METRICS.drift_repairs.inc()
                self.events.post(body, "Warning", "DriftRepaired", f"{verb} {what} changed by hand")
        where = f"{len(changed)} object(s) in {target.description}, namespace {ns}"
        if changed and not provisioned_before:
            first.append(f"provisioned {where}")
        elif changed and spec_changed:
            self.events.post(body, "Normal", "Updated", f"updated {where}")
        return changed, live_objects

    def _caller_tokens(
        self,
        body: Obj,
        node: DataSpaceNode,
        kube: Kube,
        provisioned_before: bool,
        spec_changed: bool,
        first: list[str],
    ) -> dict[str, str]:
        """The callers' token Secrets (callertokens.py); their digests for the agent."""
        digests, done = callertokens.ensure(kube, node, likely_missing=not provisioned_before)
        if provisioned_before and spec_changed:  # a caller taken off the list
            done += [f"deleted {what}" for what in callertokens.remove_stale(kube, node)]
        if done and not provisioned_before:
            first.append("caller tokens: " + ", ".join(done))
        elif done:
            self.events.post(body, "Normal", "CallerTokens", "; ".join(done))
        return digests

    def _ensure_namespace(self, kube: Kube, node: DataSpaceNode, ns: str) -> None:
        if kube.get(k.NAMESPACE, ns) is not None:
            return
        obj = render.namespace(node)
        obj["metadata"]["annotations"] = {
            CREATED_NAMESPACE_ANNOTATION: f"{node.namespace}/{node.name}"
        }
        try:
            kube.create(obj)
        except ApiError as exc:
            if exc.status != 409:
                raise

    def _gateway_tls(
        self, body: Obj, node: DataSpaceNode, target: Target, now: dt.datetime
    ) -> None:
        never_provisioned = (body.get("status") or {}).get("observedGeneration") is None
        why = self.gateway_tls.ensure(target.kube, node, now, likely_missing=never_provisioned)
        if why is not None and why != "issued":
            self.events.post(
                body, "Normal", "GatewayCertificateRenewed", f"gateway TLS certificate: {why}"
            )

    # ----- keys ----------------------------------------------------------------------------
    def _keys_cached(
        self, body: Obj, node: DataSpaceNode, target: Target, now: dt.datetime
    ) -> Obj | None:
        """The key steps from the Secret as this process last wrote or read it, saving a read
        per step of a rotation. Only the operator writes it; if someone else did (the watch
        also queues a full reconcile then), the write's precondition fails and the caller
        reads it afresh (returns None)."""
        cached = self._secrets.get((node.namespace, node.name))
        if cached is None:
            return None
        try:
            secret = self._retire(body, target.kube, cached, now)
            return self._rotate_if_due(body, node, target.kube, secret, now)
        except (Conflict, NotFound):
            return None

    def _keys(
        self,
        body: Obj,
        node: DataSpaceNode,
        target: Target,
        now: dt.datetime,
        first: list[str] | None = None,
    ) -> Obj:
        names = render.Names(node.name)
        ns = render.target_namespace(node)
        owners = render.owner_reference(node)
        extra = {"ownerReferences": owners} if owners else None
        never_provisioned = (body.get("status") or {}).get("activeKey") is None
        secret, issued = keys.ensure_secret(
            target.kube,
            names.key_secret,
            ns,
            render.labels(node),
            now,
            extra,
            likely_missing=never_provisioned,
        )
        if issued:
            state = keys.read_state(secret)
            METRICS.keys_issued.inc()
            note = f"issued SM2 key {state.active.key_id[:16]}"
            if first:
                first.append(note)  # one Event for a new node, not two
            else:
                self.events.post(body, "Normal", NodeReason.KEY_ISSUED, note)
            self.publisher.key_material_changed()
        secret = self._retire(body, target.kube, secret, now)
        return self._rotate_if_due(body, node, target.kube, secret, now)

    def _retire(self, body: Obj, kube: Kube, secret: Obj, now: dt.datetime) -> Obj:
        before = keys.read_state(secret).previous
        secret = keys.retire_expired(kube, secret, now)
        gone = {p.key_id for p in before} - {p.key_id for p in keys.read_state(secret).previous}
        for key_id in sorted(gone):
            self.events.post(
                body, "Normal", "KeyRetired", f"SM2 key {key_id[:16]} retired: grace period over"
            )
        if gone:
            self.publisher.key_material_changed()
        return secret

    def rotation_request(self, body: Mapping[str, Any]) -> str | None:
        ann = body.get("metadata", {}).get("annotations") or {}
        value = ann.get(ROTATE_KEY_ANNOTATION)
        return str(value) if value is not None else None

    def _rotation_due(
        self, node: DataSpaceNode, state: keys.KeyState, request: str | None, now: dt.datetime
    ) -> str | None:
        if request is not None and request != state.handled_request:
            return f"requested ({request})"
        rotation = node.spec.key_rotation
        automatic = rotation.policy == RotationPolicy.AUTOMATIC
        if automatic and now >= state.not_before + parse_duration(rotation.rotate_every):
            return f"scheduled every {rotation.rotate_every}"
        return None

    def _rotate_if_due(
        self, body: Obj, node: DataSpaceNode, kube: Kube, secret: Obj, now: dt.datetime
    ) -> Obj:
        state = keys.read_state(secret)
        request = self.rotation_request(body)
        why = self._rotation_due(node, state, request, now)
        if why is None and state.staged is None:
            self._clear_handled_request(body, state, request)
            return secret
        node_key = (node.namespace, node.name)
        if state.staged is None:
            secret = keys.stage_next(kube, secret, now)
            state = keys.read_state(secret)
            self._staged_since[node_key] = time.monotonic()
            # Verifiers learn the next key before anything is signed with it.
            self.publisher.key_material_changed()
        staged = state.staged
        assert staged is not None
        waited = time.monotonic() - self._staged_since.setdefault(node_key, time.monotonic())
        if not self.publisher.includes(staged.key_id) and waited < self.config.publish_wait:
            with self._locks_guard:
                self._awaiting_publish[staged.key_id] = node_key
            return secret
        grace = parse_duration(node.spec.key_rotation.grace_period)
        old_id = state.active.key_id
        secret = keys.promote(
            kube,
            secret,
            now,
            grace,
            request if request != state.handled_request else None,
            endorse_successor=node.spec.role == Role.HUB,
        )
        self._staged_since.pop(node_key, None)
        with self._locks_guard:  # promoted without the announcement (publish_wait passed)
            self._awaiting_publish.pop(staged.key_id, None)
        METRICS.rotations.inc()
        self.events.post(
            body,
            "Normal",
            NodeReason.KEY_ROTATED,
            f"rotated SM2 key {old_id[:16]} -> {staged.key_id[:16]} "
            f"({why or 'staged key promoted'}); the old key verifies until {ts(now + grace)}",
        )
        self.publisher.key_material_changed()
        fault_point("before-annotation-clear")
        self._clear_handled_request(body, keys.read_state(secret), request)
        return secret

    def _clear_handled_request(self, body: Obj, state: keys.KeyState, request: str | None) -> None:
        if request is None or request != state.handled_request:
            return
        meta = body["metadata"]
        with contextlib.suppress(NotFound):
            self.hub.patch(
                k.DATASPACENODE,
                meta["name"],
                {"metadata": {"annotations": {ROTATE_KEY_ANNOTATION: None}}},
                meta["namespace"],
            )

    # ----- status --------------------------------------------------------------------------
    def _agent_condition(
        self, body: Obj, node: DataSpaceNode, sts: Obj | None, now: dt.datetime
    ) -> tuple[ConditionStatus, str, str, Obj]:
        interval = parse_duration(node.spec.agent.heartbeat_interval)
        status = body.get("status") or {}
        beat = status.get("lastHeartbeatTime")
        agent_status: Obj = {}
        ready_replicas = None
        if self.config.agent_runtime == AgentRuntime.KUBERNETES:
            replicas = node.spec.agent.replicas
            if sts is not None:
                ready_replicas = int(sts.get("status", {}).get("readyReplicas") or 0)
                agent_status = {
                    "replicas": int(sts.get("status", {}).get("replicas") or 0),
                    "readyReplicas": ready_replicas,
                }
            else:  # not re-read this time: the last observation stands
                agent_status = dict(status.get("agent") or {})
                ready_replicas = int(agent_status.get("readyReplicas") or 0)
            if ready_replicas < 1:
                return (
                    ConditionStatus.FALSE,
                    NodeReason.AGENT_UNAVAILABLE,
                    f"{ready_replicas}/{replicas} agent replicas ready",
                    agent_status,
                )
        if beat is None:
            return (
                ConditionStatus.FALSE,
                NodeReason.AGENT_UNAVAILABLE,
                "waiting for the agent's first heartbeat",
                agent_status,
            )
        age = now - keys.parse_ts(beat)
        limit = interval * self.config.heartbeat_misses
        if age > limit:
            return (
                ConditionStatus.UNKNOWN,
                NodeReason.HEARTBEAT_MISSED,
                f"no heartbeat for {int(age.total_seconds())}s "
                f"(expected every {node.spec.agent.heartbeat_interval})",
                agent_status,
            )
        ready = (
            ""
            if ready_replicas is None
            else f"{ready_replicas}/{node.spec.agent.replicas} replicas ready, "
        )
        every = node.spec.agent.heartbeat_interval
        return (
            ConditionStatus.TRUE,
            NodeReason.AGENT_AVAILABLE,
            f"{ready}heartbeats arrive every {every}",
            agent_status,
        )

    def _conditions(
        self,
        body: Obj,
        node: DataSpaceNode,
        sts: Obj | None,
        where: str,
        state: keys.KeyState,
        conditions: list[Condition],
        now: dt.datetime,
    ) -> tuple[list[Condition], Obj]:
        gen = node.generation
        key_msg = f"SM2 key {state.active.key_id[:16]} active since {ts(state.not_before)}"
        if state.staged is not None:
            key_msg += f"; next key {state.staged.key_id[:16]} staged"
        reason = NodeReason.KEY_ROTATED if state.rotated_at else NodeReason.KEY_ISSUED
        conditions = set_condition(
            conditions,
            NodeConditionType.KEY_READY,
            True,
            reason,
            key_msg,
            observed_generation=gen,
            now=now,
        )
        a_status, a_reason, a_msg, agent_status = self._agent_condition(body, node, sts, now)
        conditions = set_condition(
            conditions,
            NodeConditionType.AGENT_READY,
            a_status,
            a_reason,
            a_msg,
            observed_generation=gen,
            now=now,
        )
        conditions = self._policy_condition(body, conditions, gen, now)
        conditions = set_condition(
            conditions,
            NodeConditionType.DEGRADED,
            False,
            NodeReason.RECONCILED,
            f"objects in {where} match the spec",
            observed_generation=gen,
            now=now,
        )
        blocking = [
            c
            for c in conditions
            if c.type
            in (
                NodeConditionType.KEY_READY,
                NodeConditionType.AGENT_READY,
                NodeConditionType.POLICY_SYNCED,
                NodeConditionType.AUDIT_STREAMING,
            )
            and c.status != ConditionStatus.TRUE
        ]
        if blocking:
            ready_msg = "; ".join(f"{c.type}: {c.message or c.reason}" for c in blocking)
            ready = set_condition(
                conditions,
                NodeConditionType.READY,
                False,
                NodeReason.NOT_READY,
                ready_msg,
                observed_generation=gen,
                now=now,
            )
        else:
            ready = set_condition(
                conditions,
                NodeConditionType.READY,
                True,
                NodeReason.RECONCILED,
                "the node is provisioned, keyed, reporting and streaming audit",
                observed_generation=gen,
                now=now,
            )
        return ready, agent_status

    def _policy_condition(
        self, body: Obj, conditions: list[Condition], gen: int | None, now: dt.datetime
    ) -> list[Condition]:
        expected = self.publisher_expected_bundle(str(body["metadata"]["namespace"]))
        running = (body.get("status") or {}).get("policyBundle") or {}
        if expected is None:
            return set_condition(
                conditions,
                NodeConditionType.POLICY_SYNCED,
                ConditionStatus.UNKNOWN,
                NodeReason.BUNDLE_STALE,
                "no signed bundle yet: it needs the hub node's key",
                observed_generation=gen,
                now=now,
            )
        if running.get("hash") == expected:
            return set_condition(
                conditions,
                NodeConditionType.POLICY_SYNCED,
                True,
                NodeReason.BUNDLE_APPLIED,
                f"the agent runs bundle {expected[:16]}",
                observed_generation=gen,
                now=now,
            )
        return set_condition(
            conditions,
            NodeConditionType.POLICY_SYNCED,
            False,
            NodeReason.BUNDLE_STALE,
            f"the agent has not reported bundle {expected[:16]} yet",
            observed_generation=gen,
            now=now,
        )

    def publisher_expected_bundle(self, namespace: str) -> str | None:
        return self.publisher.current_hash(namespace)

    @staticmethod
    def _phase(conditions: list[Condition], changed: list[str]) -> NodePhase:
        ready = find_condition(conditions, NodeConditionType.READY)
        if ready is not None and ready.status == ConditionStatus.TRUE:
            return NodePhase.READY
        return NodePhase.PROVISIONING

    def _degraded(
        self,
        body: Obj,
        node: DataSpaceNode,
        conditions: list[Condition],
        reason: str,
        message: str,
        key: tuple[str, str],
    ) -> Result:
        now = self.clock()
        gen = node.generation
        previous = find_condition(conditions, NodeConditionType.DEGRADED)
        if previous is None or previous.status != ConditionStatus.TRUE or previous.reason != reason:
            self.events.post(body, "Warning", reason, message)
        METRICS.errors.labels(kind=reason).inc()
        conditions = set_condition(
            conditions,
            NodeConditionType.DEGRADED,
            True,
            reason,
            message,
            observed_generation=gen,
            now=now,
        )
        conditions = set_condition(
            conditions,
            NodeConditionType.READY,
            False,
            reason,
            message,
            observed_generation=gen,
            now=now,
        )
        backoff = self._backoff.setdefault(key, _Backoff())
        backoff.failures += 1
        jitter = random.uniform(0.8, 1.2)  # noqa: S311 - spreads retries, not a secret
        delay = min(self.config.max_backoff, 2.0 ** min(backoff.failures, 10)) * jitter
        backoff.next_try = time.monotonic() + delay
        self._write_status(body, node, conditions, NodePhase.DEGRADED, None, now, keep_keys=True)
        log.warning(
            "node %s/%s degraded: %s",
            node.namespace,
            node.name,
            message,
            extra={"node": node.name, "reason": reason},
        )
        return Result(NodePhase.DEGRADED, retry_in=delay)

    def _due(self, body: Mapping[str, Any], key: tuple[str, str]) -> str | None:
        now_m = time.monotonic()
        backoff = self._backoff.get(key)
        if backoff is not None:
            return "resync" if now_m >= backoff.next_try else None
        status = body.get("status") or {}
        if key not in self._last_full:
            # Not reconciled by this process yet: its first watch event has it queued.
            return None
        if now_m - self._last_full[key] >= self.config.resync:
            return "resync"
        generation = body["metadata"].get("generation")
        if status.get("observedGeneration") != generation and self._observed.get(key) != generation:
            return "resync"
        # A rotation in flight is driven by its own events (the annotation's update, the
        # bundle publication); the timer only catches one left behind.
        patience = max(3 * self.config.tick, self.config.publish_wait)
        lagging = now_m - self._last_full.get(key, 0.0) >= patience
        if lagging and (self.rotation_request(body) is not None or status.get("nextKey")):
            return "timer"
        now = self.clock()
        active = status.get("activeKey") or {}
        nxt = active.get("nextRotationAt")
        if nxt and now >= keys.parse_ts(nxt):
            return "timer"
        for prev in status.get("previousKeys") or []:
            if now >= keys.parse_ts(prev["retireAt"]):
                return "timer"
        return "timer" if self._heartbeat_transition(body, now) else None

    def _heartbeat_transition(self, body: Mapping[str, Any], now: dt.datetime) -> bool:
        """True when AgentReady as computed now would differ from the status (cheap: no I/O)."""
        status = body.get("status") or {}
        spec = body.get("spec") or {}
        beat = status.get("lastHeartbeatTime")
        if beat is None:
            return False
        interval = parse_duration((spec.get("agent") or {}).get("heartbeatInterval", "30s"))
        stale = now - keys.parse_ts(beat) > interval * self.config.heartbeat_misses
        current = next(
            (c for c in status.get("conditions", []) if c["type"] == NodeConditionType.AGENT_READY),
            None,
        )
        if current is None:
            return True
        if stale:
            return bool(current["status"] != ConditionStatus.UNKNOWN)
        return bool(
            current["status"] != ConditionStatus.TRUE
            and self.config.agent_runtime == AgentRuntime.EXTERNAL
        )

    def _write_status(
        self,
        body: Obj,
        node: DataSpaceNode,
        conditions: list[Condition],
        phase: NodePhase,
        state: keys.KeyState | None,
        now: dt.datetime,
        *,
        keep_keys: bool = False,
        agent_status: Obj | None = None,
    ) -> None:
        current = body.get("status") or {}
        status: Obj = {
            "phase": str(phase),
            "observedGeneration": node.generation,
            "conditions": [
                c.model_dump(mode="json", by_alias=True, exclude_none=True)
                for c in conditions
                if c.type in OWNED_CONDITIONS
            ],
        }
        if state is not None:
            status.update(self._key_status(node, state))
        elif keep_keys:
            for field_name in ("activeKey", "previousKeys", "nextKey"):
                if field_name in current:
                    status[field_name] = current[field_name]
        if agent_status:
            status["agent"] = agent_status
        elif keep_keys and "agent" in current:
            status["agent"] = current["agent"]
        if _same_status(current, status):
            return
        if current.get("phase") != status["phase"]:
            # Links and policy status depend on node readiness (links.py, policies.py).
            self.publisher.key_material_changed()
        patch = {
            "apiVersion": API_VERSION,
            "kind": DATASPACENODE_KIND,
            "metadata": {"name": node.name, "namespace": node.namespace},
            "status": status,
        }
        with contextlib.suppress(NotFound):  # deleted meanwhile
            written = self.hub.request(
                "PATCH",
                k.DATASPACENODE.path(node.namespace, node.name) + "/status",
                query=[("fieldManager", STATUS_MANAGER), ("force", "true")],
                body=patch,
                content_type="application/apply-patch+yaml",
            )
            version = written.get("metadata", {}).get("resourceVersion")
            if version:
                self._written_rv[(node.namespace, node.name)] = str(version)
        fault_point("after-status")

    def _key_status(self, node: DataSpaceNode, state: keys.KeyState) -> Obj:
        rotation = node.spec.key_rotation
        active: Obj = {
            "keyId": state.active.key_id,
            "fingerprint": state.active.key_id,
            "publicKey": state.active.public_pem,
            "notBefore": ts(state.not_before),
        }
        if state.rotated_at:
            active["rotatedAt"] = ts(state.rotated_at)
        if rotation.policy == RotationPolicy.AUTOMATIC:
            active["nextRotationAt"] = ts(state.not_before + parse_duration(rotation.rotate_every))
        out: Obj = {
            "activeKey": active,
            "previousKeys": [
                {
                    "keyId": p.key_id,
                    "fingerprint": p.key_id,
                    "publicKey": p.public_pem,
                    "retireAt": ts(p.retire_at),
                }
                for p in sorted(state.previous, key=lambda p: p.retire_at, reverse=True)
            ],
        }
        if state.staged is not None:
            out["nextKey"] = {
                "keyId": state.staged.key_id,
                "fingerprint": state.staged.key_id,
                "publicKey": state.staged.public_pem,
                "stagedAt": ts(state.staged.staged_at),
            }
        return out

    # ----- deletion ------------------------------------------------------------------------
    def cleanup(self, body: Obj) -> None:
        """Remove what the node owns in its cluster (owner references cover only local,
        same-namespace objects; this covers the rest, remote clusters included)."""
        node = DataSpaceNode.from_body(body)
        with self.lock_for(node.namespace, node.name):
            self._cleanup(body, node)
        self.forget(node.namespace, node.name)
        self.publisher.key_material_changed()

    def _cleanup(self, body: Obj, node: DataSpaceNode) -> None:
        ann = body["metadata"].get("annotations") or {}
        try:
            target = self.targets.for_node(node)
        except TargetUnavailable as exc:
            if (
                ann.get(SKIP_REMOTE_CLEANUP_ANNOTATION) == "true"
                or exc.reason == "KubeconfigSecretMissing"
            ):
                self.events.post(
                    body, "Warning", "CleanupSkipped", f"left objects in place: {exc.message}"
                )
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
                self.events.post(
                    body,
                    "Warning",
                    "CleanupSkipped",
                    f"{target.description} unreachable; objects left there",
                )
                return
            self.events.post(
                body,
                "Warning",
                NodeReason.REMOTE_CLUSTER_UNREACHABLE,
                f"cannot remove the node's objects from {target.description}; retrying. Annotate "
                f"{SKIP_REMOTE_CLEANUP_ANNOTATION}=true to delete without cleaning up",
            )
            raise


_OWNED_FIELDS = ("phase", "observedGeneration", "activeKey", "previousKeys", "nextKey", "agent")


def _without_managed_fields(obj: Obj) -> Obj:
    """A shallow copy without managedFields (half a small object's size); a replace that
    omits them leaves the server's unchanged."""
    meta = {key: v for key, v in obj.get("metadata", {}).items() if key != "managedFields"}
    return {**obj, "metadata": meta}


def _same_status(current: Obj, new: Obj) -> bool:
    if any(f in current and f not in new for f in _OWNED_FIELDS):
        return False
    for key, value in new.items():
        if key == "conditions":
            have = {c["type"]: c for c in current.get("conditions", [])}
            for cond in value:
                old = have.get(cond["type"])
                if old is None or any(
                    old.get(f) != cond.get(f)
                    for f in ("status", "reason", "message", "observedGeneration")
                ):
                    return False
        elif current.get(key) != value:
            return False
    return True
