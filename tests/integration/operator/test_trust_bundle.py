"""The trust bundle: signed by the hub key, follows rotations, reaches every node's namespace."""

from __future__ import annotations

import base64
import json
from typing import Any

from support.operator import OperatorRunner, apply, node_manifest, wait_for
from trustspace import trust
from trustspace.crypto import SM2PublicKey
from trustspace.kube import Kube
from trustspace.kube import kinds as k
from trustspace.localk8s import LocalCluster

BUNDLE = "trustspace-trust-bundle"


def _hub(ns: str) -> dict[str, Any]:
    return node_manifest("cn-nanning", ns, role="hub", jurisdiction="CN")


def _status(kube: Kube, ns: str, name: str) -> dict[str, Any]:
    return dict((kube.get(k.DATASPACENODE, name, ns) or {}).get("status") or {})


def _bundle(kube: Kube, ns: str) -> trust.SignedTrustBundle | None:
    cm = kube.get(k.CONFIG_MAP, BUNDLE, ns)
    if cm is None:
        return None
    return trust.SignedTrustBundle.from_json(cm["data"]["bundle.json"])


def _keys(bundle: trust.TrustBundle, node: str) -> dict[str, str | None]:
    return {key.key_id: key.retire_at for key in bundle.node(node).keys}


def _rotate(kube: Kube, ns: str, name: str, token: str) -> None:
    patch = {"metadata": {"annotations": {"trustspace.io/rotate-key": token}}}
    kube.patch(k.DATASPACENODE, name, patch, ns)


def test_bundle_is_signed_by_the_hub_and_tracks_edge_rotation(
    cluster: LocalCluster, kube: Kube, namespace: str, operator: OperatorRunner
) -> None:
    operator.start()
    apply(cluster, _hub(namespace))
    apply(cluster, node_manifest("vn-hanoi", namespace))
    hub_id = wait_for(
        "hub key",
        lambda: (_status(kube, namespace, "cn-nanning").get("activeKey") or {}).get("keyId"),
    )
    edge_id = wait_for(
        "edge key",
        lambda: (_status(kube, namespace, "vn-hanoi").get("activeKey") or {}).get("keyId"),
    )
    hub_pub = SM2PublicKey.from_pem(
        _status(kube, namespace, "cn-nanning")["activeKey"]["publicKey"]
    )

    def has_both() -> trust.TrustBundle | None:
        signed = _bundle(kube, namespace)
        if signed is None:
            return None
        bundle = trust.verify_bundle(signed, hub_pub)
        names = {n.name for n in bundle.nodes}
        return bundle if {"cn-nanning", "vn-hanoi"} <= names else None

    first = wait_for("bundle with both nodes", has_both)
    assert first.hub_key_id == hub_id
    assert _keys(first, "vn-hanoi") == {edge_id: None}
    cm = kube.get(k.CONFIG_MAP, BUNDLE, namespace)
    assert "PRIVATE" not in json.dumps(cm)
    assert cm["data"]["hub.pem"] == hub_pub.to_pem().decode()  # type: ignore[index]

    _rotate(kube, namespace, "vn-hanoi", "r1")
    new_id = wait_for(
        "edge rotated",
        lambda: (
            (a := (_status(kube, namespace, "vn-hanoi").get("activeKey") or {}).get("keyId"))
            != edge_id
            and a
        ),
    )

    def follows() -> trust.TrustBundle | None:
        signed = _bundle(kube, namespace)
        bundle = trust.verify_bundle(signed, hub_pub) if signed else None
        if bundle is None or new_id not in _keys(bundle, "vn-hanoi"):
            return None
        return bundle

    second = wait_for("bundle follows the rotation", follows)
    assert second.serial > first.serial
    keys = _keys(second, "vn-hanoi")
    assert keys[new_id] is None and keys[edge_id] is not None  # old key kept until retireAt
    # A signature by the old key still verifies during the grace period.
    second.node_key("vn-hanoi", edge_id)


def test_hub_key_rotation_is_endorsed_by_the_old_key(
    cluster: LocalCluster, kube: Kube, namespace: str, operator: OperatorRunner
) -> None:
    operator.start()
    apply(cluster, _hub(namespace))
    old_id = wait_for(
        "hub key",
        lambda: (_status(kube, namespace, "cn-nanning").get("activeKey") or {}).get("keyId"),
    )
    pinned = SM2PublicKey.from_pem(_status(kube, namespace, "cn-nanning")["activeKey"]["publicKey"])
    wait_for("first bundle", lambda: _bundle(kube, namespace))

    _rotate(kube, namespace, "cn-nanning", "hub-1")

    def signed_by_new_key() -> trust.TrustBundle | None:
        signed = _bundle(kube, namespace)
        if signed is None or signed.bundle.hub_key_id == old_id:
            return None
        return trust.verify_bundle(signed, pinned)  # follows the endorsement chain

    bundle = wait_for("bundle signed by the new hub key", signed_by_new_key)
    assert [e.previous_key_id for e in bundle.endorsements] == [old_id]
    secret = kube.get(k.SECRET, "cn-nanning-sm2-key", namespace)
    assert secret is not None
    assert "PRIVATE" not in base64.b64decode(secret["data"]["pub.pem"]).decode()
