"""config/samples/ is valid and encodes the seeds' examples (B1, B7, R2, S1)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trustspace.api import DataSpaceNode, MirrorLink, TransferPolicy, parse_resource
from trustspace.api.constants import Classification, Jurisdiction, Role
from trustspace.api.transferpolicy import Action, Channel, TransferRule

pytestmark = pytest.mark.unit

SAMPLES = Path(__file__).resolve().parents[3] / "config" / "samples"


def _load() -> list[DataSpaceNode | TransferPolicy | MirrorLink]:
    objects = []
    for path in sorted(SAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            objects.append(parse_resource(doc))
    return objects


OBJECTS = _load()
NODES = {o.name: o for o in OBJECTS if isinstance(o, DataSpaceNode)}
POLICIES = {o.name: o for o in OBJECTS if isinstance(o, TransferPolicy)}
LINKS = {o.name: o for o in OBJECTS if isinstance(o, MirrorLink)}


def test_samples_name_no_namespace() -> None:
    # They are applied into whatever namespace the user (or a test) picks.
    assert all("namespace" not in o.metadata for o in OBJECTS)


def test_one_hub_in_cn_and_edges_in_asean_states() -> None:
    hubs = [n for n in NODES.values() if n.spec.role == Role.HUB]
    assert [(h.name, h.spec.jurisdiction) for h in hubs] == [("cn-nanning", Jurisdiction.CN)]
    edges = {n.spec.jurisdiction for n in NODES.values() if n.spec.role == Role.EDGE}
    assert {Jurisdiction.VN, Jurisdiction.TH, Jurisdiction.SG, Jurisdiction.MY} <= edges


def test_remote_edges_reference_kubeconfig_secrets() -> None:
    remote = [n for n in NODES.values() if n.spec.placement.mode == "Remote"]
    assert remote
    for node in remote:
        assert node.spec.placement.kubeconfig_secret_ref is not None
        assert node.spec.placement.kubeconfig_secret_ref.name.endswith("kubeconfig")


def test_links_reference_sample_nodes_and_policies() -> None:
    assert LINKS
    for link in LINKS.values():
        assert link.spec.source.name in NODES, link.name
        assert link.spec.destination.name in NODES, link.name
        for ref in link.spec.policy_refs:
            assert ref.name in POLICIES, (link.name, ref.name)
    ends = {
        (NODES[link.spec.source.name].spec.role, NODES[link.spec.destination.name].spec.role)
        for link in LINKS.values()
    }
    assert {(Role.HUB, Role.EDGE), (Role.EDGE, Role.HUB), (Role.EDGE, Role.EDGE)} <= ends


def _rules_from(jurisdiction: Jurisdiction) -> list[TransferRule]:
    return [
        rule
        for policy in POLICIES.values()
        if policy.spec.sources.jurisdictions == [jurisdiction]
        for rule in policy.spec.rules
    ]


def test_vietnam_core_and_important_need_prime_minister_and_public_security() -> None:
    # R2: both bodies must approve, so minApprovals equals the number of approvers.
    rules = [
        r
        for r in _rules_from(Jurisdiction.VN)
        if {Classification.CORE, Classification.IMPORTANT} <= set(r.classifications)
    ]
    assert rules
    for rule in rules:
        assert rule.action == Action.REVIEW and rule.approval is not None
        names = {a.name for a in rule.approval.approvers}
        assert any("prime-minister" in n for n in names)
        assert any("public-security" in n for n in names)
        assert rule.approval.min_approvals == len(rule.approval.approvers) == 2


def test_malaysia_needs_security_assessment_for_every_level() -> None:
    rules = _rules_from(Jurisdiction.MY)
    covered = {c for r in rules for c in r.classifications}
    assert covered == set(Classification)
    for rule in rules:
        assert rule.action == Action.REVIEW and rule.approval is not None
        assert any(
            a.kind == "Assessor" and a.jurisdiction == Jurisdiction.MY
            for a in rule.approval.approvers
        )


def test_singapore_personal_data_needs_certification() -> None:
    rules = [r for r in _rules_from(Jurisdiction.SG) if r.categories and "personal" in r.categories]
    assert rules
    assert all(r.required_certifications for r in rules if r.action != Action.DENY)


def test_logistics_auto_and_health_review_channels() -> None:
    # B7: logistics tracks take the automatic channel, health records sandbox plus review.
    all_rules = [r for p in POLICIES.values() for r in p.spec.rules]
    logistics = [
        r
        for r in all_rules
        if r.categories
        and "logistics" in r.categories
        and Classification.PUBLIC in r.classifications
    ]
    assert logistics and all(r.effective_channel == Channel.AUTO for r in logistics)
    health = [
        r
        for r in all_rules
        if r.categories and "health" in r.categories and r.action != Action.DENY
    ]
    assert health
    for rule in health:
        assert rule.effective_channel == Channel.REVIEW and rule.action == Action.REVIEW
        assert rule.approval is not None and rule.approval.min_approvals >= 2
