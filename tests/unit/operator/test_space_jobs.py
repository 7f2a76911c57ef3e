"""The space controller's jobs, each without a control plane (space/)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any, cast

import pytest

from support.fake_kube import FakeKube
from trustspace import trust
from trustspace.api.dataspacenode import DataSpaceNode
from trustspace.kube import Kube, Obj
from trustspace.kube import kinds as k
from trustspace_operator import keys, render
from trustspace_operator.space import NodeFeed, SpaceController
from trustspace_operator.space.collector_pair import CollectorPair
from trustspace_operator.space.delivery import Delivery
from trustspace_operator.space.gateway_extras import APPROVERS_CONFIGMAP, gateway_extras
from trustspace_operator.space.peer_directory import refresh_directory
from trustspace_operator.space.policy_bundle import PolicyBundles
from trustspace_operator.space.policy_compiler import (
    POLICY_HASH_ANNOTATION,
    POLICY_VERSION_ANNOTATION,
)
from trustspace_operator.space.trust_bundle import (
    HASH_ANNOTATION,
    SERIAL_ANNOTATION,
    TrustBundles,
    configmap,
    keys_of,
)
from trustspace_operator.space.validated_nodes import ValidatedNodes
from trustspace_operator.targets import Targets
from trustspace_operator.tls.ca import CA_SECRET, GatewayCA, SpaceCAs, ca_secret

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
SPACE = "space"


def _node(name: str, role: str = "edge", **status: Any) -> Obj:
    return {
        "apiVersion": "trustspace.io/v1alpha1",
        "kind": "DataSpaceNode",
        "metadata": {
            "name": name,
            "namespace": SPACE,
            "uid": f"uid-{name}",
            "generation": 1,
            "resourceVersion": "1",
            "creationTimestamp": "2026-12-01T00:00:00Z",
        },
        "spec": {
            "role": role,
            "jurisdiction": "CN" if role == "hub" else "VN",
            "endpoint": f"https://{name}.example:8443",
        },
        "status": status,
    }


def _keyed(name: str, role: str = "edge") -> tuple[Obj, Obj]:
    """A node whose status announces the key of the Secret returned beside it."""
    secret = keys.new_secret(render.Names(name).key_secret, SPACE, {}, NOW)
    state = keys.read_state(secret)
    active = {
        "keyId": state.active.key_id,
        "fingerprint": state.active.key_id,
        "publicKey": state.active.public_pem,
        "notBefore": "2026-12-04T11:00:00Z",
    }
    return _node(name, role, activeKey=active), secret


def _hub(kube: FakeKube) -> tuple[Obj, Obj]:
    body, secret = _keyed("hub", role="hub")
    kube.put(secret)
    return body, secret


def _kube(fake: FakeKube) -> Kube:
    return cast(Kube, fake)


def test_keys_of_announces_active_staged_and_retiring_keys() -> None:
    status = {
        "activeKey": {"keyId": "a", "publicKey": "PA", "notBefore": "2026-12-04T11:00:00Z"},
        "nextKey": {"keyId": "n", "publicKey": "PN", "stagedAt": "2026-12-04T11:30:00Z"},
        "previousKeys": [{"keyId": "p", "publicKey": "PP", "retireAt": "2026-12-05T00:00:00Z"}],
    }
    assert [key.key_id for key in keys_of(status)] == ["a", "n", "p"]
    assert keys_of({}) == []


def _document(bundles: TrustBundles, live: list[Obj], secret: Obj, extras: dict[str, str]) -> Any:
    hub_node = DataSpaceNode.from_body(live[0])
    compiled = _compiled()
    hub_key = keys.active_private_key(secret)
    return bundles.document(SPACE, live, hub_node, secret, hub_key, compiled, extras, 0)


def _compiled() -> Any:
    from trustspace_operator.space.policy_compiler import CompiledSpace

    return CompiledSpace(1, "c" * 64, "h" * 64, "envelope", "2026-12-04T12:00:00Z")


def test_the_trust_bundle_is_signed_again_only_when_its_content_changes() -> None:
    kube = FakeKube()
    hub, secret = _hub(kube)
    edge, _ = _keyed("edge")
    bundles = TrustBundles(_kube(kube))
    first = _document(bundles, [hub, edge], secret, {})
    assert first["serial"] == 1
    signed = trust.SignedTrustBundle.from_json(first["bundle.json"])
    bundle = trust.verify_bundle(signed, keys.active_private_key(secret).public_key())
    assert [n.name for n in bundle.nodes] == ["edge", "hub"]
    assert _document(bundles, [hub, edge], secret, {}) is first  # nothing changed
    second = _document(bundles, [hub, edge], secret, {"approvers.yaml": "{}\n"})
    assert second["serial"] == 2 and second["hash"] != first["hash"]
    published = bundles.published[SPACE]
    assert published.serial == 2 and len(published.key_ids) == 2
    # A node without a key yet is left out of the bundle.
    third = _document(bundles, [hub, edge, _node("new")], secret, {"approvers.yaml": "{}\n"})
    assert third is second


def test_after_a_restart_the_serial_continues_from_the_configmap() -> None:
    kube = FakeKube()
    hub, secret = _hub(kube)
    doc = _document(TrustBundles(_kube(kube)), [hub], secret, {})
    kube.put(configmap(SPACE, {**doc, "serial": 41}, None))
    assert _document(TrustBundles(_kube(kube)), [hub], secret, {})["serial"] == 42


def test_the_configmap_carries_bundles_extras_and_a_given_collector_ca() -> None:
    doc = {
        "serial": 3,
        "hash": "x" * 64,
        "bundle.json": "{}",
        "hub.pem": "PEM",
        "policy": _compiled(),
        "extras": {render.COLLECTOR_CA_KEY: "issued", render.APPROVERS_KEY: "{}\n"},
    }
    cm = configmap("edge-ns", doc, None)
    ann = cm["metadata"]["annotations"]
    assert (ann[SERIAL_ANNOTATION], ann[HASH_ANNOTATION]) == ("3", "x" * 64)
    assert ann[POLICY_VERSION_ANNOTATION] == "1" and ann[POLICY_HASH_ANNOTATION] == "h" * 64
    assert cm["data"][render.POLICY_BUNDLE_KEY] == "envelope"
    assert cm["data"][render.COLLECTOR_CA_KEY] == "issued"
    assert configmap("edge-ns", doc, "given")["data"][render.COLLECTOR_CA_KEY] == "given"


def test_the_policy_bundle_is_compiled_again_only_when_its_inputs_move(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kube = FakeKube()
    hub, secret = _hub(kube)
    policies = PolicyBundles(_kube(kube), ValidatedNodes())
    compiles: list[int] = []
    real = policies.compiler.compile

    def counting(*args: Any, **kw: Any) -> Any:
        compiles.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(policies.compiler, "compile", counting)
    hub_key = keys.active_private_key(secret)
    warnings: list[tuple[str, str]] = []

    def warn(reason: str, message: str) -> None:
        warnings.append((reason, message))

    edge = _node("edge")
    compiled, _ = policies.compile(SPACE, [hub, edge], [], hub_key, warn)
    rotated = _node("edge", activeKey={"keyId": "new"})  # a key change is no input
    assert policies.compile(SPACE, [hub, rotated], [], hub_key, warn)[0] is compiled
    assert len(compiles) == 1
    edge["metadata"]["labels"] = {"tier": "gold"}
    policies.compile(SPACE, [hub, edge], [], hub_key, warn)
    assert len(compiles) == 2
    assert warnings == []


def test_after_a_restart_the_policy_version_continues_from_the_configmap() -> None:
    """Agents refuse a policy bundle older than the one they enforce: a restarted operator
    that numbered from 1 again left every running agent on the old policy (seen on kind
    after the leader Pod was killed: PolicySynced False on every node that kept running)."""
    kube = FakeKube()
    hub, secret = _hub(kube)
    hub_key = keys.active_private_key(secret)
    edge = _node("edge")

    def warn(reason: str, message: str) -> None:
        raise AssertionError((reason, message))

    before = PolicyBundles(_kube(kube), ValidatedNodes())
    first, _ = before.compile(SPACE, [hub, edge], [], hub_key, warn)
    doc = _document(TrustBundles(_kube(kube)), [hub, edge], secret, {})
    kube.put(configmap(SPACE, {**doc, "policy": replace(first, version=7)}, None))
    # The restarted operator: same inputs, same bundle, same version as published.
    after = PolicyBundles(_kube(kube), ValidatedNodes())
    same, _ = after.compile(SPACE, [hub, edge], [], hub_key, warn)
    assert same.version == 7
    # New inputs: the next version, never 1 again.
    edge["metadata"]["labels"] = {"tier": "gold"}
    edge["metadata"]["generation"] = 2
    moved, _ = after.compile(SPACE, [hub, _node("other"), edge], [], hub_key, warn)
    assert moved.version == 8


def test_delivery_writes_each_destination_once_per_content() -> None:
    kube = FakeKube()
    hub, _ = _hub(kube)
    remote = _node("far")
    remote["spec"]["placement"] = {"mode": "Remote", "kubeconfigSecretRef": {"name": "missing"}}
    delivery = Delivery(Targets(_kube(kube)), ValidatedNodes(), None)
    doc = {"serial": 1, "hash": "a" * 64, "bundle.json": "{}", "hub.pem": "P"}
    doc["policy"] = _compiled()
    delivery.deliver([hub, _node("edge"), remote], doc)  # the remote one is unreachable
    assert kube.writes == [("apply", "ConfigMap", SPACE, render.TRUST_BUNDLE_CONFIGMAP)]
    delivery.deliver([hub, _node("edge")], doc)
    assert len(kube.writes) == 1
    kube.failing.add("ConfigMap")
    delivery.deliver([hub], {**doc, "hash": "b" * 64})  # refused: tried again next pass
    kube.failing.clear()
    delivery.deliver([hub], {**doc, "hash": "b" * 64})
    assert len(kube.writes) == 2


def test_gateway_extras_hold_the_cas_and_the_approvers() -> None:
    kube = FakeKube()
    assert gateway_extras(_kube(kube), SPACE, None) == {render.APPROVERS_KEY: "{}\n"}
    ca = GatewayCA.generate(SPACE)
    kube.put(ca_secret(SPACE, ca))
    approvers = {"name": APPROVERS_CONFIGMAP, "namespace": SPACE}
    kube.put({"kind": "ConfigMap", "metadata": approvers, "data": {"approvers.yaml": "a: []\n"}})
    extras = gateway_extras(_kube(kube), SPACE, "COLLECTOR-CA")
    assert extras[render.GATEWAY_CA_KEY] == ca.cert_pem.decode()
    assert extras[render.APPROVERS_KEY] == "a: []\n"
    assert extras[render.COLLECTOR_CA_KEY] == "COLLECTOR-CA"


def test_the_collector_pair_is_issued_once_and_its_ca_returned() -> None:
    kube = FakeKube()
    assert CollectorPair(_kube(kube), SpaceCAs(_kube(kube)), None, None).ensure(SPACE) is None
    pair = CollectorPair(_kube(kube), SpaceCAs(_kube(kube)), "collector-tls", "https://c:8443")
    ca = pair.ensure(SPACE)
    assert ca is not None and ca.startswith("-----BEGIN CERTIFICATE-----")
    assert kube.get(k.SECRET, "collector-tls", SPACE) is not None
    assert kube.get(k.SECRET, CA_SECRET, SPACE) is not None
    writes = len(kube.writes)
    assert pair.ensure(SPACE) == ca
    assert len(kube.writes) == writes  # still valid: not issued again


def test_the_peer_directory_reports_only_moved_views() -> None:
    told: list[tuple[str, list[str]]] = []

    class Directory:
        def __init__(self, changed: list[str]) -> None:
            self.changed = changed

        def refresh(self, *_: Any) -> list[str]:
            return self.changed

    def views_changed(space: str, names: list[str]) -> None:
        told.append((space, names))

    refresh_directory(Directory([]), SPACE, [], [], [], views_changed)  # type: ignore[arg-type]
    refresh_directory(Directory(["a"]), SPACE, [], [], [], views_changed)  # type: ignore[arg-type]
    assert told == [(SPACE, ["a"])]


def test_a_pass_publishes_from_the_watched_nodes_and_tells_the_node_controller() -> None:
    kube = FakeKube()
    hub, _ = _hub(kube)
    edge, _ = _keyed("edge")
    for body in (hub, edge):
        kube.put(body)
    published: list[frozenset[str]] = []
    space = SpaceController(
        _kube(kube), Targets(_kube(kube)), nodes=NodeFeed(published=published.append)
    )
    assert space.current_hash(SPACE) is None
    result = space.publish()
    keys_announced = result[SPACE].key_ids
    assert published == [keys_announced] and len(keys_announced) == 2
    edge_key = edge["status"]["activeKey"]["keyId"]
    assert space.includes(edge_key) and not space.includes("unknown")
    assert space.current_hash(SPACE) == result[SPACE].content_hash
    cm = kube.get(k.CONFIG_MAP, render.TRUST_BUNDLE_CONFIGMAP, SPACE)
    assert cm is not None and cm["metadata"]["annotations"][SERIAL_ANNOTATION] == "1"


def test_a_space_without_a_hub_node_publishes_nothing() -> None:
    kube = FakeKube()
    edge, _ = _keyed("edge")
    kube.put(edge)
    space = SpaceController(_kube(kube), Targets(_kube(kube)))
    assert space.publish() == {}
    assert kube.writes == []
