"""TransferPolicies compiled by the operator: status, signed bundle, versions, live profiles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from support.operator import OperatorRunner, apply, condition, events_for, node_manifest, wait_for
from trustspace.crypto import SM2PublicKey
from trustspace.kube import Kube
from trustspace.kube import kinds as k
from trustspace.localk8s import LocalCluster
from trustspace.policy import PolicyBundle, PolicyEngine, TransferRequest

SAMPLES = Path(__file__).resolve().parents[3] / "config" / "samples"


def _policy(ns: str, name: str) -> dict[str, Any]:
    doc = yaml.safe_load((SAMPLES / f"transferpolicy_{name}.yaml").read_text())
    doc["metadata"]["namespace"] = ns
    return dict(doc)


def _tp(kube: Kube, ns: str, name: str) -> dict[str, Any]:
    return kube.get(k.TRANSFERPOLICY, name, ns) or {}


def _bundle(kube: Kube, ns: str, hub: SM2PublicKey) -> PolicyBundle | None:
    cm = kube.get(k.CONFIG_MAP, "trustspace-trust-bundle", ns)
    if cm is None or "policy-bundle.json" not in cm["data"]:
        return None
    return PolicyBundle.open_envelope(cm["data"]["policy-bundle.json"].encode(), [hub])


def test_policies_compile_into_a_signed_bundle_the_gateway_can_use(
    cluster: LocalCluster, kube: Kube, namespace: str, operator: OperatorRunner
) -> None:
    operator.start()
    apply(cluster, node_manifest("cn-nanning", namespace, role="hub", jurisdiction="CN"))
    apply(cluster, node_manifest("vn-hanoi", namespace))
    apply(cluster, _policy(namespace, "logistics-auto"))
    compiled = wait_for(
        "Compiled",
        lambda: (
            (c := condition(_tp(kube, namespace, "logistics-auto"), "Compiled"))
            and c["status"] == "True"
        ),
    )
    assert compiled
    status = _tp(kube, namespace, "logistics-auto")["status"]
    assert condition(_tp(kube, namespace, "logistics-auto"), "Accepted")["status"] == "True"  # type: ignore[index]
    assert status["selectedNodes"] == 2
    hub = SM2PublicKey.from_pem(
        kube.get(k.DATASPACENODE, "cn-nanning", namespace)["status"]["activeKey"]["publicKey"]
    )  # type: ignore[index]
    bundle = wait_for("signed policy bundle", lambda: _bundle(kube, namespace, hub))
    assert bundle.hash == status["bundle"]["hash"]
    assert bundle.version == status["bundle"]["version"]
    decision = PolicyEngine(bundle).decide(
        TransferRequest.of("vn-hanoi", "cn-nanning", "internal", ["logistics"])
    )
    assert decision.verdict == "allow" and decision.channel == "auto"

    # A second policy changes the content: a new version; the first policy follows it.
    apply(cluster, _policy(namespace, "health-review"))
    newer = wait_for(
        "version 2",
        lambda: (b := _bundle(kube, namespace, hub)) and b.version > bundle.version and b,
    )
    wait_for(
        "status follows",
        lambda: (
            _tp(kube, namespace, "logistics-auto")["status"]["bundle"]["version"] == newer.version
        ),
    )
    health = PolicyEngine(newer).decide(
        TransferRequest.of("vn-hanoi", "cn-nanning", "internal", ["health"])
    )
    assert health.verdict == "review"


def test_a_policy_selecting_nothing_is_not_accepted(
    cluster: LocalCluster, kube: Kube, namespace: str, operator: OperatorRunner
) -> None:
    operator.start()
    apply(cluster, node_manifest("cn-nanning", namespace, role="hub", jurisdiction="CN"))
    policy = _policy(namespace, "logistics-auto")
    policy["spec"]["sources"] = {"jurisdictions": ["KH"]}
    apply(cluster, policy)
    accepted = wait_for(
        "Accepted reported", lambda: condition(_tp(kube, namespace, "logistics-auto"), "Accepted")
    )
    assert accepted["status"] == "False" and accepted["reason"] == "NoMatchingNodes"
    assert "sources select no DataSpaceNode" in accepted["message"]


def test_profile_override_is_picked_up_live_with_a_warning(
    cluster: LocalCluster, kube: Kube, namespace: str, operator: OperatorRunner
) -> None:
    operator.start()
    apply(cluster, node_manifest("cn-nanning", namespace, role="hub", jurisdiction="CN"))
    apply(cluster, node_manifest("sg-singapore", namespace, jurisdiction="SG"))
    apply(cluster, _policy(namespace, "logistics-auto"))
    hub = wait_for(
        "hub key",
        lambda: (
            (kube.get(k.DATASPACENODE, "cn-nanning", namespace) or {}).get("status") or {}
        ).get("activeKey"),
    )
    first = wait_for(
        "bundle", lambda: _bundle(kube, namespace, SM2PublicKey.from_pem(hub["publicKey"]))
    )
    override = {
        "jurisdiction": "SG",
        "rules": [
            {
                "id": "personal-data-certification",
                "acceptedCertifications": ["apec-cbpr", "sg-dptm"],
            }
        ],
    }
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "profiles",
                "namespace": namespace,
                "labels": {"trustspace.io/profiles": "true"},
            },
            "data": {"sg.yaml": json.dumps(override)},
        }
    )
    second = wait_for(
        "recompiled with the override",
        lambda: (
            (b := _bundle(kube, namespace, SM2PublicKey.from_pem(hub["publicKey"])))
            and b.version > first.version
            and b
        ),
    )
    assert "sg-dptm" in json.dumps(second.profiles["SG"])
    warnings = [
        e for e in events_for(cluster, namespace, "cn-nanning") if e["reason"] == "ProfilesChanged"
    ]
    assert warnings and "SG" in warnings[0]["message"]


def test_mirrorlink_conditions_follow_nodes_and_policies(
    cluster: LocalCluster, kube: Kube, namespace: str, operator: OperatorRunner
) -> None:
    operator.start()
    apply(cluster, node_manifest("cn-nanning", namespace, role="hub", jurisdiction="CN"))
    apply(cluster, node_manifest("vn-hanoi", namespace))
    apply(cluster, _policy(namespace, "logistics-auto"))
    link = yaml.safe_load((SAMPLES / "mirrorlink_vn-hanoi-to-cn-nanning.yaml").read_text())
    link["metadata"]["namespace"] = namespace
    apply(cluster, link)

    def conds() -> dict[str, Any] | None:
        body = kube.get(k.MIRRORLINK, "vn-hanoi-to-cn-nanning", namespace) or {}
        found = {c["type"]: c for c in (body.get("status") or {}).get("conditions", [])}
        return found if {"Ready", "NodesReady", "PoliciesResolved"} <= set(found) else None

    first = wait_for("link conditions", conds)
    # vn-core-important is referenced but does not exist yet; no agents run, so not Ready.
    assert first["PoliciesResolved"]["status"] == "False"
    assert first["PoliciesResolved"]["reason"] == "PolicyNotFound"
    assert "vn-core-important" in first["PoliciesResolved"]["message"]
    assert first["NodesReady"]["reason"] == "NodeNotReady"
    assert first["Ready"]["status"] == "False"

    apply(cluster, _policy(namespace, "vn-core-important"))
    resolved = wait_for(
        "policies resolved",
        lambda: (c := conds()) and c["PoliciesResolved"]["status"] == "True" and c,
    )
    assert resolved["PoliciesResolved"]["message"] == "2 policies compiled"
