"""Compilation: deterministic canonical bundle, SM3 hash, SM2 signature, per-policy reports."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_support import NODES, node, policy, rule, samples

from trustspace.api.constants import PolicyReason
from trustspace.api.transferpolicy import MAX_CONFLICTS
from trustspace.crypto import SM2PrivateKey
from trustspace.policy.bundle import BundleError, PolicyBundle
from trustspace.policy.compiler import CompileError, compile_bundle
from trustspace.policy.profile_loader import load_profiles

pytestmark = pytest.mark.unit

PROFILES = load_profiles()
POLICIES, SAMPLE_NODES = samples()
BASE = compile_bundle(POLICIES, SAMPLE_NODES, PROFILES, version=3)


def _shuffled(docs: list[dict[str, Any]], rnd: random.Random) -> list[dict[str, Any]]:
    """The same objects in another order, with every set-like list reordered too."""
    out = copy.deepcopy(docs)
    rnd.shuffle(out)
    for doc in out:
        for r in doc.get("spec", {}).get("rules", []):
            for key in ("classifications", "categories", "requiredCertifications"):
                if key in r:
                    rnd.shuffle(r[key])
            if "approval" in r:
                rnd.shuffle(r["approval"]["approvers"])
            desens = r.get("protections", {}).get("desensitisation")
            if desens:
                rnd.shuffle(desens)
        rules = doc.get("spec", {}).get("rules")
        if rules:
            rnd.shuffle(rules)
    return out


@settings(max_examples=40, deadline=None)
@given(st.randoms(use_true_random=False))
def test_shuffled_inputs_give_identical_bytes(rnd: random.Random) -> None:
    result = compile_bundle(
        _shuffled(POLICIES, rnd), _shuffled(SAMPLE_NODES, rnd), PROFILES, version=3
    )
    assert result.bundle.canonical == BASE.bundle.canonical
    assert result.bundle.hash == BASE.bundle.hash


def _rule(p: list[dict[str, Any]], policy_name: str, rule_name: str) -> dict[str, Any]:
    target = next(x for x in p if x["metadata"]["name"] == policy_name)
    return next(r for r in target["spec"]["rules"] if r["name"] == rule_name)


def _change_priority(p: list[dict[str, Any]], n: list[dict[str, Any]]) -> None:
    p[0]["spec"]["priority"] += 1


def _change_action(p: list[dict[str, Any]], n: list[dict[str, Any]]) -> None:
    target = _rule(p, "health-review", "health-core")
    target["action"] = "review"
    target["approval"] = {"approvers": [{"name": "x", "kind": "Assessor"}]}


def _change_selected_nodes(p: list[dict[str, Any]], n: list[dict[str, Any]]) -> None:
    # th-rayong leaves the twin parks: the twin-parks policy selects fewer nodes.
    target = next(x for x in n if x["metadata"]["name"] == "th-rayong")
    del target["metadata"]["labels"]


def _add_node(p: list[dict[str, Any]], n: list[dict[str, Any]]) -> None:
    n.append(node("kh-phnom-penh", "KH"))


def _change_desensitisation(p: list[dict[str, Any]], n: list[dict[str, Any]]) -> None:
    fields = _rule(p, "health-review", "health-records")["protections"]["desensitisation"]
    next(f for f in fields if f["method"] == "mask")["mask"]["keepFirst"] = 2


RELEVANT = [
    _change_priority,
    _change_action,
    _change_selected_nodes,
    _add_node,
    _change_desensitisation,
]


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(RELEVANT), st.randoms(use_true_random=False))
def test_any_relevant_change_changes_the_hash(change: Any, rnd: random.Random) -> None:
    policies, nodes = _shuffled(POLICIES, rnd), _shuffled(SAMPLE_NODES, rnd)
    change(policies, nodes)
    assert compile_bundle(policies, nodes, PROFILES, version=3).bundle.hash != BASE.bundle.hash


def test_profile_change_changes_the_hash() -> None:
    changed = load_profiles(
        overrides=[
            {
                "jurisdiction": "VN",
                "rules": [{"id": "core-important-approval", "approval": {"minApprovals": 1}}],
            }
        ]
    )
    assert compile_bundle(POLICIES, SAMPLE_NODES, changed, version=3).bundle.hash != (
        BASE.bundle.hash
    )


def test_label_change_that_selects_the_same_nodes_keeps_the_hash() -> None:
    nodes = copy.deepcopy(SAMPLE_NODES)
    nodes[0]["metadata"]["labels"]["team"] = "ops"
    assert compile_bundle(POLICIES, nodes, PROFILES, version=3).bundle.hash == BASE.bundle.hash


def test_version_is_hashed_but_content_hash_is_not() -> None:
    other = compile_bundle(POLICIES, SAMPLE_NODES, PROFILES, version=4).bundle
    assert other.hash != BASE.bundle.hash
    assert other.content_hash == BASE.bundle.content_hash
    assert other.version == 4


def test_bytes_round_trip_and_non_canonical_bytes_are_refused() -> None:
    bundle = BASE.bundle
    assert PolicyBundle.from_bytes(bundle.to_bytes()).hash == bundle.hash
    import json

    pretty = json.dumps(dict(bundle.data), indent=1).encode()
    with pytest.raises(BundleError, match="canonical"):
        PolicyBundle.from_bytes(pretty)


def test_sm2_signature_over_canonical_bytes() -> None:
    hub, other = SM2PrivateKey.generate(), SM2PrivateKey.generate()
    bundle = BASE.bundle
    bundle.verify(bundle.sign(hub), hub.public_key())
    with pytest.raises(BundleError):
        bundle.verify(bundle.sign(other), hub.public_key())
    envelope = bundle.signed_envelope(hub)
    assert PolicyBundle.open_envelope(envelope, [hub.public_key()]).hash == bundle.hash
    with pytest.raises(BundleError, match="untrusted key"):
        PolicyBundle.open_envelope(envelope, [other.public_key()])
    tampered = envelope.replace(b'"priority":900', b'"priority":901')
    assert tampered != envelope
    with pytest.raises(BundleError, match="does not verify"):
        PolicyBundle.open_envelope(tampered, [hub.public_key()])


def test_reports_for_the_samples() -> None:
    reports = BASE.reports
    assert set(reports) == {p["metadata"]["name"] for p in POLICIES}
    assert all(r.accepted and r.compiled for r in reports.values())
    assert reports["twin-parks"].source_nodes == ("cn-nanning", "my-kuantan", "th-rayong")
    assert reports["vn-core-important"].source_nodes == ("vn-hanoi",)
    assert reports["vn-core-important"].selected_nodes == 5
    assert "bundle version 3" in reports["twin-parks"].message


def test_invalid_and_unselecting_policies_are_reported_not_compiled() -> None:
    bad = policy("bad", [rule("r", "allow", ["core"])])
    lonely = policy("lonely", [rule("r", "allow", ["public"])], sources={"jurisdictions": ["LA"]})
    result = compile_bundle([bad, lonely], NODES, PROFILES, version=1)
    assert result.reports["bad"].reason == PolicyReason.INVALID_SPEC
    assert "core data never crosses" in result.reports["bad"].message
    assert result.reports["lonely"].reason == PolicyReason.NO_MATCHING_NODES
    assert not result.reports["lonely"].accepted
    assert result.bundle.policies == []


def test_conflicts_name_both_rules_and_are_capped() -> None:
    allow = policy("open", [rule("all-public", "allow", ["public"])], priority=500)
    deny = policy(
        "closed",
        [
            rule(f"no-{c}", "deny", ["public"], [c])
            for c in [
                "health",
                "trade",
                "customs",
                "logistics",
                "payments",
                "tourism",
                "personal",
                "financial",
                "genetic",
                "geospatial",
                "industrial",
                "telemetry",
                "public-data",
            ]
        ]
        + [rule("no-public-x", "deny", ["public"])]
        + [rule(f"extra-{i}", "deny", ["public"], ["trade"]) for i in range(5)],
        priority=500,
    )
    lower = policy("lower", [rule("deny-all", "deny", ["public"])], priority=100)
    result = compile_bundle([allow, deny, lower], NODES, PROFILES, version=1)
    open_report = result.reports["open"]
    assert open_report.reason == PolicyReason.CONFLICTS_FOUND
    assert open_report.conflicts_total == 19
    assert len(open_report.conflicts) == MAX_CONFLICTS
    first = open_report.conflicts[0]
    assert (first.rule, first.policy) == ("all-public", "closed")
    assert "deny wins" in first.message and "flow(s)" in first.message
    assert result.reports["lower"].conflicts_total == 0  # different priority: no conflict
    assert result.reports["closed"].conflicts_total == 19


def test_one_bundle_per_namespace() -> None:
    a = policy("a", [rule("r", "allow", ["public"])])
    b = copy.deepcopy(a)
    b["metadata"] = {"name": "b", "namespace": "other"}
    with pytest.raises(CompileError, match="several namespaces"):
        compile_bundle([a, b], NODES, PROFILES, version=1)
    only = compile_bundle([a, b], NODES, PROFILES, version=1, namespace="other")
    assert [p["name"] for p in only.bundle.policies] == []  # nodes live in "" not "other"
    with pytest.raises(CompileError, match="two TransferPolicies"):
        compile_bundle([a, copy.deepcopy(a)], NODES, PROFILES, version=1)
