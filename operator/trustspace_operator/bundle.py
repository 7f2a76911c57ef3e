"""The trust bundle: every node's valid SM2 public keys, signed by the hub's key (B3).

A data space is the set of DataSpaceNodes in one namespace of the hub cluster: the hub
node there signs the bundle for all of them, so several data spaces can share a cluster.

Built from the DataSpaceNodes' status (public keys only: private keys never leave the key
Secrets), signed with the hub node's active key, and written to one ConfigMap per target
namespace and cluster, which every agent there mounts. Publishing runs on its own thread
and coalesces bursts: a thousand nodes keyed at once produce a handful of bundles, not a
thousand.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trustspace import trust
from trustspace.api.constants import Role
from trustspace.api.dataspacenode import DataSpaceNode
from trustspace.crypto import sm3
from trustspace.kube import ApiError, Kube, Obj, Unreachable
from trustspace.kube import kinds as k
from trustspace_operator import collectortls, gatewaytls, keys, render
from trustspace_operator.events import EventRecorder
from trustspace_operator.links import update_links
from trustspace_operator.metrics import METRICS
from trustspace_operator.peers import SpaceDirectory
from trustspace_operator.policies import CompiledSpace, PolicyCompiler
from trustspace_operator.targets import Targets, TargetUnavailable

log = logging.getLogger(__name__)
HUB_KEY_PEM = "hub.pem"
SERIAL_ANNOTATION = "trustspace.io/bundle-serial"
HASH_ANNOTATION = "trustspace.io/bundle-hash"
#: ConfigMap in a data space's namespace (hub cluster) with the approvers' SM2 public keys,
#: ``approvers.yaml: {name: [PEM, ...]}``; copied into every node's trust ConfigMap.
APPROVERS_CONFIGMAP = "trustspace-approvers"
APPROVERS_LABEL = "trustspace.io/approvers"


def _keys_of(status: dict[str, Any]) -> list[trust.NodeKey]:
    out: list[trust.NodeKey] = []
    active = status.get("activeKey") or {}
    if active.get("publicKey"):
        out.append(
            trust.NodeKey(
                keyId=active["keyId"], publicKey=active["publicKey"], notBefore=active["notBefore"]
            )
        )
    staged = status.get("nextKey") or {}
    if staged.get("publicKey"):
        # Published before it signs anything, so no verifier ever meets it unannounced.
        out.append(
            trust.NodeKey(
                keyId=staged["keyId"], publicKey=staged["publicKey"], notBefore=staged["stagedAt"]
            )
        )
    for prev in status.get("previousKeys") or []:
        if prev.get("publicKey"):
            out.append(
                trust.NodeKey(
                    keyId=prev["keyId"],
                    publicKey=prev["publicKey"],
                    notBefore="1970-01-01T00:00:00Z",
                    retireAt=prev["retireAt"],
                )
            )
    return out


@dataclass(frozen=True)
class Published:
    serial: int
    content_hash: str
    key_ids: frozenset[str]


class BundlePublisher:
    def __init__(
        self,
        hub: Kube,
        targets: Targets,
        *,
        namespaces: list[str] | None = None,
        collector_ca: str | None = None,
        collector_url: str | None = None,
        collector_tls_secret: str | None = None,
        debounce: float = 0.3,
        every: float = 10.0,
    ) -> None:
        self.hub = hub
        self.namespaces = namespaces or []
        self.collector_ca = collector_ca
        #: With a Secret name, the collector's serving pair is issued into each data space
        #: (collectortls.py) for `collector_url`; its CA then is the collector CA agents get.
        self.collector_url = collector_url
        self.collector_tls_secret = collector_tls_secret
        self._tls = gatewaytls.GatewayTls(hub)
        self.policies = PolicyCompiler(hub)
        self.events: EventRecorder | None = None
        #: Called with the key ids of every bundle just delivered (NodeController promotes).
        self.on_published: Callable[[frozenset[str]], None] | None = None
        #: The controller's directory of gateway peers, refreshed from each pass's lists,
        #: and who to tell about nodes whose peers changed (NodeController.views_changed).
        self.directory: SpaceDirectory | None = None
        self.on_views_changed: Callable[[str, list[str]], None] | None = None
        self.targets = targets
        self.debounce = debounce
        self.every = every
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._published: dict[str, Published] = {}
        self._docs: dict[str, dict[str, Any]] = {}
        self._nodes: dict[tuple[str, int, tuple[tuple[str, str], ...]], DataSpaceNode] = {}
        self._entries: dict[str, tuple[str, trust.TrustedNode, str]] = {}
        self._compiled: dict[str, tuple[Any, CompiledSpace, Any]] = {}
        self._delivered: dict[tuple[str, str], str] = {}
        self._thread: threading.Thread | None = None
        self._last_cost = 0.0
        #: The nodes as the controller's watch last delivered them (NodeController.watched):
        #: a pass then lists no nodes, as long as every node of the last listing is there.
        self.watched: Callable[[], list[Obj]] | None = None
        self._listed: set[tuple[str, str]] | None = None
        self._last_listing = 0.0
        #: True while a staged key waits for the next pass to be announced (a rotation):
        #: then passes follow each other closely (NodeController.awaiting_publish).
        self.urgent: Callable[[], bool] | None = None
        self._lock = threading.Lock()

    # ----- the hook NodeController calls ---------------------------------------------------
    def key_material_changed(self) -> None:
        self._dirty.set()

    def includes(self, key_id: str) -> bool:
        return any(key_id in p.key_ids for p in list(self._published.values()))

    def current_hash(self, namespace: str) -> str | None:
        published = self._published.get(namespace)
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
            urgent = self.urgent is not None and self.urgent()
            self._stop.wait(max(self.debounce, (1.0 if urgent else 4.0) * self._last_cost))
            self._dirty.clear()
            started = time.thread_time()
            try:
                self.publish()
            except Exception:  # the next change or the periodic pass retries
                log.exception("publishing the trust bundle failed")
            self._last_cost = time.thread_time() - started
            if self.urgent is not None and self.urgent():
                # A staged key this pass did not see yet (its status write was still on the
                # way): pass again rather than leave its rotation to the periodic pass.
                self._dirty.set()

    # ----- one publication -----------------------------------------------------------------
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
                self._refresh_directory(ns, spaces[ns], links.get(ns, []), policies.get(ns, []))
                try:
                    self._publish_space(ns, spaces[ns], policies.get(ns, []))
                except keys.KeySecretCorrupt as exc:
                    log.error("trust bundle of %s not signed: hub key unreadable: %s", ns, exc)
            published = dict(self._published)
        if self.on_published is not None and published:
            self.on_published(frozenset().union(*(p.key_ids for p in published.values())))
        return published

    def _node_bodies(self, scopes: list[str | None]) -> list[Obj]:
        """Every node of the watched namespaces. Listing a thousand nodes was most of a
        pass's cost, and passes come one after another during a rotation; the controller's
        watch holds them all already. It is used only when it covers every node of the
        last listing (so a restart, or a deletion, lists again); the periodic pass lists
        anyway, so whatever the watch might have missed is caught there."""
        watched = self.watched() if self.watched is not None else None
        periodic = time.monotonic() - self._last_listing >= self.every
        if watched is not None and self._listed is not None and not periodic:
            have = {(b["metadata"]["namespace"], b["metadata"]["name"]) for b in watched}
            if self._listed <= have:
                return watched
        bodies = [body for ns in scopes for body in self.hub.list(k.DATASPACENODE, ns)]
        self._listed = {(b["metadata"]["namespace"], b["metadata"]["name"]) for b in bodies}
        self._last_listing = time.monotonic()
        return bodies

    def _refresh_directory(
        self, space: str, nodes: list[Obj], links: list[Obj], policies: list[Obj]
    ) -> None:
        if self.directory is None:
            return
        changed = self.directory.refresh(space, nodes, links, policies)
        if changed and self.on_views_changed is not None:
            self.on_views_changed(space, changed)

    def _gateway_extras(self, space: str) -> dict[str, str]:
        """What the gateways need beside the bundles: the CA of their serving certificates
        and the approvers' public keys (always present, so the file always exists)."""
        extras = {render.APPROVERS_KEY: "{}\n"}
        collector_ca = self._collector_tls(space)
        if collector_ca and not self.collector_ca:
            extras[render.COLLECTOR_CA_KEY] = collector_ca
        ca = gatewaytls.read_ca_cert(self.hub, space)
        if ca:
            extras[render.GATEWAY_CA_KEY] = ca
        approvers = self.hub.get(k.CONFIG_MAP, APPROVERS_CONFIGMAP, space)
        text = ((approvers or {}).get("data") or {}).get(render.APPROVERS_KEY)
        if text:
            extras[render.APPROVERS_KEY] = str(text)
        return extras

    def _collector_tls(self, space: str) -> str | None:
        """Keep the collector's serving pair issued in `space`; returns its CA certificate."""
        if not (self.collector_tls_secret and self.collector_url):
            return None
        try:
            ca, why = collectortls.ensure(
                self.hub,
                self._tls,
                self.collector_tls_secret,
                space,
                self.collector_url,
                dt.datetime.now(dt.UTC),
            )
        except (ApiError, Unreachable) as exc:  # the next pass retries; bundles go out anyway
            log.warning("collector TLS pair in %s not issued: %s", space, exc)
            return None
        if why is not None:
            log.info("collector TLS pair %s/%s issued: %s", space, self.collector_tls_secret, why)
        return ca.cert_pem.decode()

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
        entries = sorted((self._trusted(b) for b in live), key=lambda e: e[0].name)
        nodes = [entry for entry, _ in entries if entry.keys]
        endorsements = keys.endorsements(secret)
        # The content without serial and time decides whether anything changed: the entries'
        # fingerprints, the signer and its endorsements (three canonical encodings of the
        # whole bundle a pass cost more than anything else in a pass).
        content = [
            hub_key.key_id,
            str(secret["metadata"].get("annotations", {}).get(keys.ANN_ENDORSEMENTS, "")),
        ]
        content += [mark for entry, mark in entries if entry.keys]
        trust_hash = sm3("\n".join(content).encode()).hex()
        hub_body = hubs[0]
        compiled, result = self._compile(space, live, policies, hub_key, hub_body)
        extras = self._gateway_extras(space)
        extras_hash = sm3(repr(sorted(extras.items())).encode()).hex()
        content_hash = sm3(f"{trust_hash}:{compiled.content_hash}:{extras_hash}".encode()).hex()
        doc = self._docs.get(space)
        if doc is None or doc["hash"] != content_hash:
            serial = self._next_serial(hub_node, doc)
            bundle = trust.build_bundle(
                nodes, serial=serial, hub_key_id=hub_key.key_id, endorsements=endorsements
            )
            signed = trust.sign_bundle(bundle, hub_key)
            doc = {
                "serial": serial,
                "hash": content_hash,
                "bundle.json": signed.to_json(),
                HUB_KEY_PEM: hub_key.public_key().to_pem().decode(),
                "policy": compiled,
                "extras": extras,
            }
            self._docs[space] = doc
            self._published[space] = Published(
                serial,
                compiled.hash,
                frozenset(key.key_id for n in nodes for key in n.keys),
            )
            METRICS.bundles.inc()
            log.info(
                "signed trust bundle %d and policy bundle %d of %s (%d nodes, %d policies)",
                serial,
                compiled.version,
                space,
                len(nodes),
                len(policies),
            )
        self._deliver(live, doc)
        self.policies.write_status(space, policies, compiled, result, live)
        update_links(self.hub, space, live, policies)

    def _compile(
        self, space: str, live: list[Obj], policies: list[Obj], hub_key: Any, hub_body: Obj
    ) -> tuple[CompiledSpace, Any]:
        """The policy bundle, compiled again only when its inputs moved: the policies, the
        nodes' names, generations and labels, the signer (a rotation changes none of them
        but the keys, and a compile of a thousand nodes cost a seventh of a pass)."""
        inputs = (
            hub_key.key_id,
            tuple(
                (b["metadata"]["name"], b["metadata"].get("generation"), self._labels(b))
                for b in live
            ),
            tuple((p["metadata"]["name"], p["metadata"].get("resourceVersion")) for p in policies),
            self.policies.profile_versions(space),
        )
        last = self._compiled.get(space)
        if last is not None and last[0] == inputs:
            return last[1], last[2]
        compiled, result = self.policies.compile(
            space,
            [self._parsed(b) for b in live],
            policies,
            hub_key,
            lambda reason, msg: self._warn(hub_body, reason, msg),
        )
        self._compiled[space] = (inputs, compiled, result)
        return compiled, result

    @staticmethod
    def _labels(body: Obj) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((body["metadata"].get("labels") or {}).items()))

    def _warn(self, hub_body: Obj, reason: str, message: str) -> None:
        if self.events is not None:
            self.events.post(hub_body, "Warning", reason, message)

    def _next_serial(self, hub_node: DataSpaceNode, doc: dict[str, Any] | None) -> int:
        if doc is not None:
            return int(doc["serial"]) + 1
        # After a restart, continue from what the hub's namespace already holds: verifiers
        # refuse a serial that goes back.
        live = self.hub.get(
            k.CONFIG_MAP, render.TRUST_BUNDLE_CONFIGMAP, render.target_namespace(hub_node)
        )
        ann = ((live or {}).get("metadata") or {}).get("annotations") or {}
        return int(ann.get(SERIAL_ANNOTATION, "0")) + 1

    def _deliver(self, bodies: list[Obj], doc: dict[str, Any]) -> None:
        destinations: dict[tuple[str, str], Kube] = {}
        for body in bodies:
            try:
                node = self._node(body)
                target = self.targets.for_node(node)
            except (TargetUnavailable, ValueError):
                continue
            destinations[(target.kube.server, render.target_namespace(node))] = target.kube
        for (server, ns), kube in sorted(destinations.items(), key=lambda d: d[0]):
            if self._delivered.get((server, ns)) == doc["hash"]:
                continue
            try:
                kube.apply(self._configmap(ns, doc))
                self._delivered[(server, ns)] = doc["hash"]
            except (ApiError, Unreachable) as exc:
                log.warning("trust bundle not delivered to %s namespace %s: %s", server, ns, exc)

    def _trusted(self, body: Obj) -> tuple[trust.TrustedNode, str]:
        """A node's bundle entry and its fingerprint (for change detection), built once per
        object version (status changes bump it); one version kept per node."""
        meta = body["metadata"]
        uid, version = str(meta.get("uid")), str(meta.get("resourceVersion"))
        cached = self._entries.get(uid)
        if cached is None or cached[0] != version:
            if len(self._entries) > 50_000:
                self._entries.clear()
            entry = trust.TrustedNode(
                name=meta["name"],
                role=body["spec"]["role"],
                jurisdiction=body["spec"]["jurisdiction"],
                keys=_keys_of(body.get("status") or {}),
            )
            mark = repr(
                (
                    entry.name,
                    entry.role,
                    entry.jurisdiction,
                    [(x.key_id, x.public_key, x.not_before, x.retire_at) for x in entry.keys],
                )
            )
            cached = self._entries[uid] = (version, entry, mark)
        return cached[1], cached[2]

    def _parsed(self, body: Obj) -> DataSpaceNode | Obj:
        """The node for the policy compiler: validated once (see `_node`); a body that does
        not validate goes as it is, for the compiler to report."""
        try:
            return self._node(body)
        except ValueError:
            return body

    def _node(self, body: Obj) -> DataSpaceNode:
        """Validated once per generation and labels (which the policy compiler reads): a
        thousand pydantic validations a pass were half the cost of a pass."""
        meta = body["metadata"]
        labels = tuple(sorted((meta.get("labels") or {}).items()))
        key = (str(meta.get("uid")), int(meta.get("generation") or 0), labels)
        node = self._nodes.get(key)
        if node is None:
            if len(self._nodes) > 50_000:
                self._nodes.clear()
            node = self._nodes[key] = DataSpaceNode.from_body(body)
        return node

    def _configmap(self, ns: str, doc: dict[str, Any]) -> Obj:
        policy: CompiledSpace = doc["policy"]
        data = {
            render.TRUST_BUNDLE_KEY: doc["bundle.json"],
            HUB_KEY_PEM: doc[HUB_KEY_PEM],
            render.POLICY_BUNDLE_KEY: policy.envelope,
            **doc.get("extras", {}),
        }
        if self.collector_ca:
            data[render.COLLECTOR_CA_KEY] = self.collector_ca
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": render.TRUST_BUNDLE_CONFIGMAP,
                "namespace": ns,
                "labels": {
                    "app.kubernetes.io/part-of": "trustspace",
                    "app.kubernetes.io/managed-by": render.MANAGED_BY,
                    "app.kubernetes.io/component": "trust-bundle",
                },
                "annotations": {
                    SERIAL_ANNOTATION: str(doc["serial"]),
                    HASH_ANNOTATION: doc["hash"],
                },
            },
            "data": data,
        }
