"""Decisions: precedence (priority, restrictiveness, no specificity tie-break), default deny,
profiles that policies cannot loosen (R2, R3), request-time checks, multi-category merge."""

from __future__ import annotations

from typing import Any

import pytest
from policy_support import NODES, policy, rule, samples

from trustspace.policy.compiler import compile_bundle
from trustspace.policy.decision import TransferRequest, Verdict
from trustspace.policy.engine import PolicyEngine
from trustspace.policy.profile_loader import load_profiles

pytestmark = pytest.mark.unit

PROFILES = load_profiles()


def engine(*policies: dict[str, Any], profiles: Any = PROFILES) -> PolicyEngine:
    return PolicyEngine(compile_bundle(list(policies), NODES, profiles, version=1).bundle)


def ask(e: PolicyEngine, src: str, dst: str, cls: str, *cats: str, **kw: Any) -> Any:
    return e.decide(TransferRequest.of(src, dst, cls, cats, **kw))


def test_a_flow_no_rule_covers_is_denied() -> None:
    e = engine(policy("p", [rule("trade", "allow", ["public"], ["trade"])]))
    d = ask(e, "kh-1", "sg-1", "public", "health")
    assert d.verdict == Verdict.DENY
    assert "denied by default" in d.reason
    assert d.matched == ()
    assert ask(e, "kh-1", "sg-1", "public", "trade").verdict == Verdict.ALLOW


def test_uncategorised_data_only_matches_rules_for_every_category() -> None:
    e = engine(policy("p", [rule("trade", "allow", ["public"], ["trade"])]))
    assert ask(e, "kh-1", "sg-1", "public").verdict == Verdict.DENY
    e = engine(policy("p", [rule("all", "allow", ["public"])]))
    assert ask(e, "kh-1", "sg-1", "public").verdict == Verdict.ALLOW


def test_higher_priority_wins_even_if_less_restrictive() -> None:
    e = engine(
        policy("low", [rule("no", "deny", ["internal"])], priority=100),
        policy("high", [rule("yes", "allow", ["internal"])], priority=200),
    )
    d = ask(e, "kh-1", "sg-1", "internal", "trade")
    assert d.verdict == Verdict.ALLOW
    assert [str(m) for m in d.matched] == ["policy high/yes (priority 200, allow)"]
    assert d.conflicts == ()


@pytest.mark.parametrize(
    ("a", "b", "winner"),
    [("allow", "deny", "deny"), ("allow", "review", "review"), ("review", "deny", "deny")],
)
def test_equal_priority_most_restrictive_wins_and_conflict_recorded(
    a: str, b: str, winner: str
) -> None:
    e = engine(
        policy("pa", [rule("ra", a, ["internal"])], priority=300),
        policy("pb", [rule("rb", b, ["internal"])], priority=300),
    )
    d = ask(e, "kh-1", "sg-1", "internal", "trade")
    assert d.verdict == winner
    assert len(d.conflicts) == 1 and f"loses to {winner} at priority 300" in d.conflicts[0]


def test_specificity_does_not_beat_restrictiveness_at_equal_priority() -> None:
    broad = policy("broad", [rule("no-health", "deny", ["internal"], ["health"])], priority=100)
    narrow = policy(
        "narrow",
        [rule("kh-health", "allow", ["internal"], ["health"])],
        priority=100,
        sources={"names": ["kh-1"]},
        destinations={"names": ["sg-1"]},
    )
    assert ask(engine(broad, narrow), "kh-1", "sg-1", "internal", "health").verdict == Verdict.DENY
    narrow["spec"]["priority"] = 101
    assert ask(engine(broad, narrow), "kh-1", "sg-1", "internal", "health").verdict == (
        Verdict.ALLOW
    )


def test_selector_criteria_must_all_match() -> None:
    p = policy(
        "gold-kh",
        [rule("r", "allow", ["public"])],
        sources={"jurisdictions": ["KH"], "selector": {"matchLabels": {"tier": "gold"}}},
    )
    e = engine(p)
    assert ask(e, "kh-1", "sg-1", "public").verdict == Verdict.ALLOW
    p["spec"]["sources"]["selector"]["matchLabels"]["tier"] = "silver"
    assert ask(engine(p), "kh-1", "sg-1", "public").verdict == Verdict.DENY


def test_vietnam_important_data_always_needs_both_approvals() -> None:
    # Even a top-priority allow cannot loosen the VN profile (R2, seed 002 part 二(一)).
    e = engine(policy("open", [rule("all", "allow", ["important"])], priority=1000))
    d = ask(e, "vn-1", "sg-1", "important", "trade")
    assert d.verdict == Verdict.REVIEW and d.channel == "review"
    (req,) = d.approvals
    assert {a.name for a in req.approvers} == {
        "vn-prime-ministers-office",
        "vn-ministry-of-public-security",
    }
    assert req.min_approvals == 2 and req.rule.kind == "profile"
    assert any(m.kind == "profile" and m.owner == "VN" for m in d.matched)
    # Inside Viet Nam no border is crossed: the profile does not apply.
    assert ask(e, "vn-1", "vn-2", "important", "trade").verdict == Verdict.ALLOW
    # Internal data is not covered by the VN rule.
    e = engine(policy("open", [rule("all", "allow", ["internal"])]))
    assert ask(e, "vn-1", "sg-1", "internal", "trade").verdict == Verdict.ALLOW


def test_policy_and_profile_approvals_are_both_required() -> None:
    e = engine(policy("rev", [rule("r", "review", ["core"])]))
    d = ask(e, "vn-1", "kh-1", "core", "health")
    assert d.verdict == Verdict.REVIEW
    assert sorted(r.rule.kind for r in d.approvals) == ["policy", "profile"]
    assert d.min_approvals_total == 3


def test_singapore_personal_data_needs_a_certified_recipient() -> None:
    e = engine(policy("open", [rule("all", "allow", ["internal"])]))
    denied = ask(e, "sg-1", "kh-1", "internal", "personal")
    assert denied.verdict == Verdict.DENY
    assert "holds none of apec-cbpr" in denied.reason
    ok = ask(e, "sg-1", "kh-1", "internal", "personal", recipient_certifications=["apec-cbpr"])
    assert ok.verdict == Verdict.ALLOW
    assert ask(e, "sg-1", "kh-1", "internal", "trade").verdict == Verdict.ALLOW


def test_data_leaving_china_on_the_negative_list_needs_an_assessment() -> None:
    e = engine(policy("open", [rule("all", "allow", ["internal", "important"])]))
    assert ask(e, "cn-hub", "kh-1", "internal", "trade").verdict == Verdict.ALLOW
    d = ask(e, "cn-hub", "kh-1", "important", "trade")
    assert d.verdict == Verdict.REVIEW
    assert d.approvals[0].approvers[0].name == "cn-outbound-data-security-assessor"


def test_profile_deny_overrides_any_policy() -> None:
    profiles = load_profiles(
        overrides=[
            {
                "jurisdiction": "KH",
                "rules": [
                    {
                        "id": "no-genetic",
                        "description": "d",
                        "source": "test",
                        "categories": ["genetic"],
                        "effect": "deny",
                    }
                ],
            }
        ]
    )
    e = engine(policy("open", [rule("all", "allow", ["public"])], priority=1000), profiles=profiles)
    d = ask(e, "kh-1", "sg-1", "public", "genetic")
    assert d.verdict == Verdict.DENY and "a policy cannot loosen it" in d.reason


def test_risk_list_warns_on_flows_into_states_without_a_law() -> None:
    e = engine(policy("open", [rule("all", "allow", ["public"])]))
    d = ask(e, "sg-1", "kh-1", "public", "trade")
    assert d.verdict == Verdict.ALLOW
    assert any("KH risk no-data-protection-law" in w for w in d.warnings)
    assert not any("KH risk" in w for w in ask(e, "kh-1", "sg-1", "public", "trade").warnings)


def test_multi_category_data_must_satisfy_every_category() -> None:
    e = engine(
        policy(
            "p",
            [
                rule(
                    "trade",
                    "allow",
                    ["internal"],
                    ["trade"],
                    limits={"maxPayloadSize": "1Mi"},
                    protections={"desensitisation": [{"field": "a", "method": "mask"}]},
                ),
                rule(
                    "health",
                    "review",
                    ["internal"],
                    ["health"],
                    protections={"desensitisation": [{"field": "a", "method": "drop"}]},
                ),
            ],
        )
    )
    d = ask(e, "kh-1", "sg-1", "internal", "trade", "health")
    assert d.verdict == Verdict.REVIEW and d.channel == "review"
    assert [(p.field, p.method) for p in d.desensitisation] == [("a", "drop")]
    assert d.max_payload_size == 2**20
    assert ask(e, "kh-1", "sg-1", "internal", "trade", "tourism").verdict == Verdict.DENY


def test_payload_limit_and_required_certifications_are_checked_per_request() -> None:
    e = engine(
        policy(
            "p",
            [
                rule(
                    "r",
                    "allow",
                    ["public"],
                    limits={"maxPayloadSize": "1Ki"},
                    requiredCertifications=["iso-27701"],
                )
            ],
        )
    )
    certs = ["iso-27701"]
    assert (
        ask(e, "kh-1", "sg-1", "public", payload_size=1024, recipient_certifications=certs).verdict
        == Verdict.ALLOW
    )
    big = ask(e, "kh-1", "sg-1", "public", payload_size=1025, recipient_certifications=certs)
    assert big.verdict == Verdict.DENY and "exceeds" in big.reason
    assert ask(e, "kh-1", "sg-1", "public").verdict == Verdict.DENY


def test_unknown_nodes_and_self_transfers_are_denied() -> None:
    e = engine(policy("open", [rule("all", "allow", ["public"])]))
    assert "unknown node" in ask(e, "nowhere", "sg-1", "public").reason
    assert ask(e, "sg-1", "sg-1", "public").verdict == Verdict.DENY


def test_decisions_carry_bundle_identity_and_default_protections() -> None:
    e = engine(policy("open", [rule("all", "allow", ["public"])]))
    d = ask(e, "kh-1", "sg-1", "public")
    assert (d.bundle_version, d.bundle_hash) == (1, e.bundle.hash)
    assert (d.encryption, d.signature, d.channel) == ("SM4-GCM", "SM2", "auto")
    assert d.to_dict()["verdict"] == "allow"


def test_samples_encode_the_seeds() -> None:
    policies, nodes = samples()
    e = PolicyEngine(compile_bundle(policies, nodes, PROFILES, version=1).bundle)
    health = ask(e, "th-rayong", "cn-nanning", "internal", "health")
    assert health.verdict == Verdict.REVIEW
    assert [(p.field, p.method) for p in health.desensitisation] == [
        ("patient.address", "drop"),
        ("patient.birthDate", "generalise"),
        ("patient.idNumber", "pseudonymise"),
        ("patient.name", "mask"),
    ]
    assert health.approvals[0].min_approvals == 2
    assert ask(e, "vn-hanoi", "cn-nanning", "internal", "logistics").channel == "auto"
    assert ask(e, "my-kuantan", "cn-nanning", "public", "trade").verdict == Verdict.REVIEW
