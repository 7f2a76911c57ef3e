"""The trust bundle: every node's valid SM2 public keys, signed by the hub's key (B3), and
the ConfigMap that carries it with the policy bundle and the gateway extras.

Built from the DataSpaceNodes' status (public keys only: private keys never leave the key
Secrets). A new serial is signed only when the content changed: the entries, the signer,
its endorsements, the policy bundle or the extras.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from trustspace import trust
from trustspace.api.dataspacenode import DataSpaceNode
from trustspace.crypto import sm3
from trustspace.kube import Kube, Obj
from trustspace.kube import kinds as k
from trustspace_operator import keys, render
from trustspace_operator.metrics import METRICS
from trustspace_operator.space.policy_compiler import (
    POLICY_COMPILED_AT_ANNOTATION,
    POLICY_CONTENT_HASH_ANNOTATION,
    POLICY_HASH_ANNOTATION,
    POLICY_VERSION_ANNOTATION,
    CompiledSpace,
)

log = logging.getLogger(__name__)
HUB_KEY_PEM = "hub.pem"
SERIAL_ANNOTATION = "trustspace.io/bundle-serial"
HASH_ANNOTATION = "trustspace.io/bundle-hash"


def keys_of(status: dict[str, Any]) -> list[trust.NodeKey]:
    """The keys a node's status announces: active, staged (published before it signs
    anything, so no verifier ever meets it unannounced) and those in their grace period."""
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


class TrustBundles:
    """The signed document of each data space, re-signed only when its content changed."""

    def __init__(self, hub: Kube) -> None:
        self.hub = hub
        #: What each data space's last document announces (read by other threads).
        self.published: dict[str, Published] = {}
        self._docs: dict[str, dict[str, Any]] = {}
        self._entries: dict[str, tuple[str, trust.TrustedNode, str]] = {}

    def document(
        self,
        space: str,
        live: list[Obj],
        hub_node: DataSpaceNode,
        secret: Obj,
        hub_key: Any,
        compiled: CompiledSpace,
        extras: dict[str, str],
        policy_count: int,
    ) -> dict[str, Any]:
        """The data space's document: the last one if nothing changed, else newly signed."""
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
        extras_hash = sm3(repr(sorted(extras.items())).encode()).hex()
        content_hash = sm3(f"{trust_hash}:{compiled.content_hash}:{extras_hash}".encode()).hex()
        doc = self._docs.get(space)
        if doc is not None and doc["hash"] == content_hash:
            return doc
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
        self.published[space] = Published(
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
            policy_count,
        )
        return doc

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
                keys=keys_of(body.get("status") or {}),
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


def configmap(ns: str, doc: dict[str, Any], collector_ca: str | None) -> Obj:
    """The trust ConfigMap every agent in `ns` mounts; `collector_ca`: the CA the operator
    was given for the collector (overrides an issued pair's)."""
    policy: CompiledSpace = doc["policy"]
    data = {
        render.TRUST_BUNDLE_KEY: doc["bundle.json"],
        HUB_KEY_PEM: doc[HUB_KEY_PEM],
        render.POLICY_BUNDLE_KEY: policy.envelope,
        **doc.get("extras", {}),
    }
    if collector_ca:
        data[render.COLLECTOR_CA_KEY] = collector_ca
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
                POLICY_VERSION_ANNOTATION: str(policy.version),
                POLICY_CONTENT_HASH_ANNOTATION: policy.content_hash,
                POLICY_HASH_ANNOTATION: policy.hash,
                POLICY_COMPILED_AT_ANNOTATION: policy.compiled_at,
            },
        },
        "data": data,
    }
