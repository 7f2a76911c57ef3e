"""Jurisdiction profiles as data (R1-R4): seeds encoded, overrides merged, changes shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustspace.api.constants import Jurisdiction
from trustspace.policy.jurisdiction import LawStatus, ProfileEffect
from trustspace.policy.profile_loader import (
    ProfileError,
    ProfileOverride,
    ProfileWatcher,
    diff_profiles,
    load_profiles,
    overrides_from_configmap,
)

pytestmark = pytest.mark.unit

BUILTIN = load_profiles()


def test_every_state_has_a_profile_and_every_rule_a_source() -> None:
    assert {p.jurisdiction for p in BUILTIN} == set(Jurisdiction)
    for profile in BUILTIN:
        assert profile.data_protection_law.source
        for rule in profile.rules:
            assert "seed 00" in rule.source, (profile.jurisdiction, rule.id)
        for entry in profile.risk_list:
            assert "seed 00" in entry.source


def test_vietnam_core_and_important_need_both_approvals() -> None:
    (rule,) = BUILTIN.profiles[Jurisdiction.VN].rules
    assert rule.effect == ProfileEffect.REVIEW
    assert set(rule.classifications or []) == {"important", "core"}
    assert rule.approval is not None
    assert {a.name for a in rule.approval.approvers} == {
        "vn-prime-ministers-office",
        "vn-ministry-of-public-security",
    }
    assert rule.approval.min_approvals == 2


def test_singapore_certification_malaysia_assessment_china_negative_list() -> None:
    (sg,) = BUILTIN.profiles[Jurisdiction.SG].rules
    assert sg.effect == ProfileEffect.CERTIFICATION
    assert sg.categories == ["personal"]
    (my,) = BUILTIN.profiles[Jurisdiction.MY].rules
    assert my.effect == ProfileEffect.REVIEW and my.classifications is None
    (cn,) = BUILTIN.profiles[Jurisdiction.CN].rules
    assert cn.effect == ProfileEffect.REVIEW and cn.provisional
    assert "负面清单" in cn.source


@pytest.mark.parametrize("state", ["KH", "LA", "MM", "BN"])
def test_states_without_a_law_get_no_rule_but_a_risk_entry(state: str) -> None:
    profile = BUILTIN.profiles[Jurisdiction(state)]
    assert profile.data_protection_law.status == LawStatus.NONE
    assert profile.data_protection_law.as_of == 2022
    assert profile.rules == []
    assert [r.id for r in profile.risk_list] == ["no-data-protection-law"]


@pytest.mark.parametrize("state", ["TH", "PH", "ID"])
def test_states_with_a_law_but_no_stated_rule_invent_none(state: str) -> None:
    profile = BUILTIN.profiles[Jurisdiction(state)]
    assert profile.data_protection_law.status == LawStatus.ENACTED
    assert profile.rules == []
    assert profile.notes


def test_partial_override_changes_only_named_fields() -> None:
    changed = load_profiles(
        overrides=[
            {
                "jurisdiction": "SG",
                "rules": [
                    {
                        "id": "personal-data-certification",
                        "acceptedCertifications": ["apec-cbpr", "sg-dptm"],
                    }
                ],
            }
        ]
    )
    (rule,) = changed.profiles[Jurisdiction.SG].rules
    assert rule.accepted_certifications == ["apec-cbpr", "sg-dptm"]
    assert rule.source == BUILTIN.profiles[Jurisdiction.SG].rules[0].source
    assert changed.hash != BUILTIN.hash
    assert diff_profiles(BUILTIN, changed) == [
        "SG: rule personal-data-certification: acceptedCertifications: "
        "[apec-cbpr] -> [apec-cbpr, sg-dptm]"
    ]


def test_override_adds_and_disables_rules(tmp_path: Path) -> None:
    path = tmp_path / "th.yaml"
    path.write_text(
        "profiles:\n"
        "  - jurisdiction: TH\n"
        "    rules:\n"
        "      - id: health-deny\n"
        "        description: example\n"
        "        source: platform team decision 2025-01\n"
        "        categories: [health]\n"
        "        effect: deny\n"
        "  - jurisdiction: MY\n"
        "    rules:\n"
        "      - {id: national-security-assessment, disabled: true}\n"
    )
    changed = load_profiles(overrides=[path])
    assert [r.id for r in changed.profiles[Jurisdiction.TH].active_rules()] == ["health-deny"]
    assert changed.profiles[Jurisdiction.MY].active_rules() == []
    diff = diff_profiles(BUILTIN, changed)
    assert "MY: rule national-security-assessment: disabled: false -> true" in diff
    assert any(line.startswith("TH: rule health-deny added: outbound") for line in diff)


def test_bad_override_names_origin_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("jurisdiction: VN\nrules:\n  - id: core-important-approval\n    effect: nope\n")
    with pytest.raises(ProfileError, match=r"bad\.yaml: profiles\[0\]\.rules\[0\]\.effect"):
        load_profiles(overrides=[path])
    with pytest.raises(ProfileError, match=r"overrides\[0\]: profiles\[0\]\.jurisdiction: 'XX'"):
        load_profiles(overrides=[{"jurisdiction": "XX"}])
    with pytest.raises(ProfileError, match="review rule must name its approvers"):
        load_profiles(
            overrides=[
                {
                    "jurisdiction": "TH",
                    "rules": [{"id": "x", "description": "d", "source": "law", "effect": "review"}],
                }
            ]
        )


def test_profile_without_builtins_must_be_complete() -> None:
    with pytest.raises(ProfileError, match="dataProtectionLaw"):
        load_profiles(builtin=False, overrides=[{"jurisdiction": "TH", "name": "Thailand"}])


def test_configmap_overrides_apply_in_key_order() -> None:
    cm = {
        "metadata": {"name": "profiles", "namespace": "trustspace"},
        "data": {
            "b.yaml": "jurisdiction: VN\nrules: [{id: core-important-approval, "
            "approval: {minApprovals: 1}}]\n",
            "a.yaml": "jurisdiction: VN\nrules: [{id: core-important-approval, "
            "approval: {minApprovals: 2}}]\n",
        },
    }
    overrides = overrides_from_configmap(cm)
    assert [o.origin for o in overrides] == [
        "configmap/trustspace/profiles:a.yaml",
        "configmap/trustspace/profiles:b.yaml",
    ]
    changed = load_profiles(overrides=overrides)
    approval = changed.profiles[Jurisdiction.VN].rules[0].approval
    assert approval is not None and approval.min_approvals == 1


def test_hash_ignores_order_of_rules_and_sets() -> None:
    a = load_profiles(
        overrides=[
            ProfileOverride(
                "a",
                {
                    "jurisdiction": "VN",
                    "rules": [
                        {"id": "core-important-approval", "classifications": ["core", "important"]}
                    ],
                },
            )
        ]
    )
    assert a.hash == BUILTIN.hash


def test_watcher_reports_live_change_and_keeps_last_good(tmp_path: Path) -> None:
    path = tmp_path / "o.yaml"
    path.write_text("jurisdiction: MY\nname: Malaysia\n")
    watcher = ProfileWatcher([path])
    assert watcher.poll() is None
    path.write_text("jurisdiction: MY\nname: Malaysia (federal)\n")
    change = watcher.poll()
    assert change is not None
    assert change.summary == ["MY: name: Malaysia -> Malaysia (federal)"]
    assert watcher.current.hash == change.new.hash != change.old.hash
    path.write_text("jurisdiction: MY\nrules: [{id: x}]\n")
    assert watcher.poll() is None
    assert watcher.last_error is not None and "o.yaml" in watcher.last_error
    assert watcher.current.hash == change.new.hash
