"""The space controller: everything built for a data space as a whole, in one pass.

A data space is the set of DataSpaceNodes in one namespace of the hub cluster: the hub node
there signs the trust bundle for all of them, so several data spaces can share a cluster.
A pass, per data space: refresh the gateway peers (peer_directory.py), compile the policy
bundle (policy_bundle.py), issue the collector's pair (collector_pair.py), gather the
gateway extras (gateway_extras.py), sign the trust bundle (trust_bundle.py), deliver it
(delivery.py), then write the TransferPolicies' status and the MirrorLinks' conditions
(mirror_links.py). Passes run on their own thread and coalesce bursts: a thousand nodes keyed
at once produce a handful of bundles, not a thousand.
"""

from __future__ import annotations

import logging
import threading
import time

from trustspace.api.constants import Role
from trustspace.api.dataspacenode import DataSpaceNode
from trustspace.kube import Kube, Obj
from trustspace.kube import kinds as k
from trustspace_operator import keys, render
from trustspace_operator.events import EventRecorder
from trustspace_operator.peers import SpaceDirectory
from trustspace_operator.space.collector_pair import CollectorPair
from trustspace_operator.space.delivery import Delivery
from trustspace_operator.space.gateway_extras import gateway_extras
from trustspace_operator.space.mirror_links import update_links
from trustspace_operator.space.node_feed import NodeFeed
from trustspace_operator.space.peer_directory import refresh_directory
from trustspace_operator.space.policy_bundle import PolicyBundles
from trustspace_operator.space.trust_bundle import Published, TrustBundles
from trustspace_operator.space.validated_nodes import ValidatedNodes
from trustspace_operator.targets import Targets
from trustspace_operator.tls.ca import SpaceCAs

log = logging.getLogger(__name__)


class SpaceController:
    def __init__(
        self,
        hub: Kube,
        targets: Targets,
        *,
        nodes: NodeFeed | None = None,
        events: EventRecorder | None = None,
        directory: SpaceDirectory | None = None,
        namespaces: list[str] | None = None,
        collector_ca: str | None = None,
        collector_url: str | None = None,
        collector_tls_secret: str | None = None,
        debounce: float = 0.3,
        every: float = 10.0,
    ) -> None:
        self.hub = hub
        self.targets = targets
        self.nodes = nodes or NodeFeed()
        self.events = events
        #: The node controller's directory of gateway peers (None: no MirrorLinks listed).
        self.directory = directory
        self.namespaces = namespaces or []
        self.debounce = debounce
        self.every = every
        validated = ValidatedNodes()
        self.policies = PolicyBundles(hub, validated)
        self.bundles = TrustBundles(hub)
        #: A collector CA given to the operator; otherwise the issued pair's CA goes out.
        self.collector_ca = collector_ca
        self.collector_pair = CollectorPair(hub, SpaceCAs(hub), collector_tls_secret, collector_url)
        self.delivery = Delivery(targets, validated, collector_ca)
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_cost = 0.0
        self._listed: set[tuple[str, str]] | None = None
        self._last_listing = 0.0
        self._lock = threading.Lock()

    # ----- what the node controller calls (nodes.SpaceHook) --------------------------------
    def space_changed(self) -> None:
        self._dirty.set()

    def includes(self, key_id: str) -> bool:
        return any(key_id in p.key_ids for p in list(self.bundles.published.values()))

    def current_hash(self, namespace: str) -> str | None:
        published = self.bundles.published.get(namespace)
        return published.content_hash if published else None

    # ----- the thread ----------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="trust-bundle", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._dirty.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._dirty.wait(self.every)
            if self._stop.is_set():
                return
            # Coalesce a burst; after a costly pass, wait in proportion to its CPU time, so
            # publishing takes at most a fifth of the operator's CPU in a storm of new keys,
            # or half of it while rotations wait for their next key to be announced.
            urgent = self.nodes.urgent()
            self._stop.wait(max(self.debounce, (1.0 if urgent else 4.0) * self._last_cost))
            self._dirty.clear()
            started = time.thread_time()
            try:
                self.publish()
            except Exception:  # the next change or the periodic pass retries
                log.exception("publishing the trust bundle failed")
            self._last_cost = time.thread_time() - started
            if self.nodes.urgent():
                # A staged key this pass did not see yet (its status write was still on the
                # way): pass again rather than leave its rotation to the periodic pass.
                self._dirty.set()

    # ----- one pass ------------------------------------------------------------------------
    def publish(self) -> dict[str, Published]:
        """Sign and deliver the bundle of every data space (namespace with a hub node)."""
        with self._lock:
            spaces: dict[str, list[Obj]] = {}
            policies: dict[str, list[Obj]] = {}
            links: dict[str, list[Obj]] = {}
            scopes: list[str | None] = list(self.namespaces) or [None]
            for body in self._node_bodies(scopes):
                spaces.setdefault(body["metadata"]["namespace"], []).append(body)
            for ns in scopes:
                for body in self.hub.list(k.TRANSFERPOLICY, ns):
                    policies.setdefault(body["metadata"]["namespace"], []).append(body)
                if self.directory is not None:
                    for body in self.hub.list(k.MIRRORLINK, ns):
                        links.setdefault(body["metadata"]["namespace"], []).append(body)
            for ns in sorted(spaces):
                if self.directory is not None:
                    refresh_directory(
                        self.directory,
                        ns,
                        spaces[ns],
                        links.get(ns, []),
                        policies.get(ns, []),
                        self.nodes.views_changed,
                    )
                try:
                    self._publish_space(ns, spaces[ns], policies.get(ns, []))
                except keys.KeySecretCorrupt as exc:
                    log.error("trust bundle of %s not signed: hub key unreadable: %s", ns, exc)
            published = dict(self.bundles.published)
        if published:
            self.nodes.published(frozenset().union(*(p.key_ids for p in published.values())))
        return published

    def _node_bodies(self, scopes: list[str | None]) -> list[Obj]:
        """Every node of the watched namespaces. Listing a thousand nodes was most of a
        pass's cost, and passes come one after another during a rotation; the node
        controller's watch holds them all already. It is used only when it covers every
        node of the last listing (so a restart, or a deletion, lists again); the periodic
        pass lists anyway, so whatever the watch might have missed is caught there."""
        watched = self.nodes.watched()
        periodic = time.monotonic() - self._last_listing >= self.every
        if watched is not None and self._listed is not None and not periodic:
            have = {(b["metadata"]["namespace"], b["metadata"]["name"]) for b in watched}
            if self._listed <= have:
                return watched
        bodies = [body for ns in scopes for body in self.hub.list(k.DATASPACENODE, ns)]
        self._listed = {(b["metadata"]["namespace"], b["metadata"]["name"]) for b in bodies}
        self._last_listing = time.monotonic()
        return bodies

    def _publish_space(self, space: str, bodies: list[Obj], policies: list[Obj]) -> None:
        live = [b for b in bodies if not b["metadata"].get("deletionTimestamp")]
        hubs = sorted(
            (b for b in live if (b.get("spec") or {}).get("role") == Role.HUB),
            key=lambda b: b["metadata"].get("creationTimestamp", ""),
        )
        if not hubs:
            return  # nodes without a hub: nothing can sign for them yet
        if len(hubs) > 1:
            log.warning("namespace %s has several hub nodes; the oldest signs", space)
        hub_node = DataSpaceNode.from_body(hubs[0])
        secret = self.hub.get(
            k.SECRET, render.Names(hub_node.name).key_secret, render.target_namespace(hub_node)
        )
        if secret is None:
            return
        hub_key = keys.active_private_key(secret)
        hub_body = hubs[0]
        compiled, result = self.policies.compile(
            space, live, policies, hub_key, lambda reason, msg: self._warn(hub_body, reason, msg)
        )
        issued_ca = self.collector_pair.ensure(space)
        extras = gateway_extras(self.hub, space, None if self.collector_ca else issued_ca)
        doc = self.bundles.document(
            space, live, hub_node, secret, hub_key, compiled, extras, len(policies)
        )
        self.delivery.deliver(live, doc)
        self.policies.write_status(space, policies, compiled, result, live)
        update_links(self.hub, space, live, policies)

    def _warn(self, hub_body: Obj, reason: str, message: str) -> None:
        if self.events is not None:
            self.events.post(hub_body, "Warning", reason, message)
