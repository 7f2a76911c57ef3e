"""Jurisdiction profiles (R2): each state's transfer constraints, kept as data.

A profile records what the seeds say about one state's data law, and the constraints a
TransferPolicy can never loosen (R2: VN core/important data needs two approvals, SG personal
data needs a certified recipient, MY needs a security assessment; R3: CN's FTZ negative
list). Every rule and risk entry names its `source`, so a reader can check it against the
seed or the law it cites; where the seeds say nothing the profile says so instead of
inventing a rule.

The built-in profiles live in `profiles/*.yaml` next to this module; the platform team
overrides or extends them without a release (see `trustspace.policy.profile_loader`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints

from trustspace.api.common import DnsLabel, Duration, LongText, ShortText, duration_between
from trustspace.api.constants import Classification, DataCategory, Jurisdiction
from trustspace.api.rules import FieldReason, ListType, Rule, SpecModel
from trustspace.api.transferpolicy import ApproverKind, Certification

Source = Annotated[str, StringConstraints(min_length=3, max_length=512)]


class Direction(StrEnum):
    """Which crossing of the state's border a rule governs. Flows between two nodes of the
    same state cross no border, and no profile rule applies to them."""

    OUTBOUND = "outbound"
    INBOUND = "inbound"


class ProfileEffect(StrEnum):
    """What a profile rule demands of a matching flow, strongest first.

    `deny` stops it; `review` holds it for the named approvers (an assessment or a
    ministry's approval) and routes it through the sandbox; `certification` denies it
    unless the recipient holds one of the accepted certifications.
    """

    DENY = "deny"
    REVIEW = "review"
    CERTIFICATION = "certification"


class LawStatus(StrEnum):
    ENACTED = "enacted"
    NONE = "none"
    """The seed states the state had no data-protection law (as of `asOf`)."""
    NOT_STATED = "not-stated"
    """The seeds do not say: nothing is recorded, nothing is assumed."""


class ProfileApprover(SpecModel):
    """A party whose signed approval the profile requires (B5)."""

    name: DnsLabel
    """Identifier quoted in approval records, e.g. `vn-ministry-of-public-security`."""
    display_name: ShortText | None = None
    """Human-friendly name."""
    kind: ApproverKind
    """`Regulator`, `Assessor`, `DataProvider`, `DataRecipient` or `PlatformOperator`."""


class ProfileApproval(SpecModel):
    """N of M approvals demanded by law; every such group must be satisfied."""

    approvers: Annotated[
        list[ProfileApprover], ListType("map", ("name",)), Field(min_length=1, max_length=16)
    ]
    min_approvals: Annotated[int, Field(ge=1, le=16)] = 1
    timeout: Annotated[Duration, duration_between("1h", "8760h")] = "720h"

    __rules__ = (
        Rule(
            cel="self.minApprovals <= size(self.approvers)",
            message="minApprovals cannot exceed the number of approvers",
            check=lambda a: a.min_approvals <= len(a.approvers),
            field_path=".minApprovals",
        ),
    )


def _review_has_approval(r: ProfileRule) -> bool:
    return r.effect != ProfileEffect.REVIEW or r.approval is not None


def _certification_has_list(r: ProfileRule) -> bool:
    return r.effect != ProfileEffect.CERTIFICATION or bool(r.accepted_certifications)


def _extras_match_effect(r: ProfileRule) -> bool:
    return (r.approval is None or r.effect == ProfileEffect.REVIEW) and (
        r.accepted_certifications is None or r.effect == ProfileEffect.CERTIFICATION
    )


class ProfileRule(SpecModel):
    """One constraint of a state's law on data crossing its border."""

    id: DnsLabel
    """Stable identifier, unique within the profile; overrides and decisions quote it."""
    description: LongText
    """What the rule demands, in plain words."""
    source: Source
    """Where it comes from: `seed 002 part 二(一)`, or the law it names."""
    direction: Direction = Direction.OUTBOUND
    """`outbound`: data leaving this state; `inbound`: data arriving in it."""
    classifications: (
        Annotated[list[Classification], ListType("set"), Field(min_length=1, max_length=4)] | None
    ) = None
    """Classification levels covered; all when absent."""
    categories: (
        Annotated[list[DataCategory], ListType("set"), Field(min_length=1, max_length=16)] | None
    ) = None
    """Data categories covered; all (and uncategorised data) when absent."""
    effect: ProfileEffect
    """`deny`, `review` (approval or assessment) or `certification`."""
    approval: ProfileApproval | None = None
    """Who must approve; required by `review`."""
    accepted_certifications: (
        Annotated[list[Certification], ListType("set"), Field(min_length=1, max_length=16)] | None
    ) = None
    """The recipient must hold at least one of these; required by `certification`."""
    provisional: bool = False
    """The source names the requirement but not its details; the details here are a
    stand-in the platform team should replace (explain prints this)."""
    disabled: bool = False
    """Switched off by an override; kept so the change stays visible in diffs (R4)."""

    __rules__ = (
        Rule(
            cel="self.effect != 'review' || has(self.approval)",
            message="a review rule must name its approvers",
            check=_review_has_approval,
            field_path=".approval",
            reason=FieldReason.REQUIRED,
        ),
        Rule(
            cel="self.effect != 'certification' || has(self.acceptedCertifications)",
            message="a certification rule must list acceptedCertifications",
            check=_certification_has_list,
            field_path=".acceptedCertifications",
            reason=FieldReason.REQUIRED,
        ),
        Rule(
            cel="(!has(self.approval) || self.effect == 'review')"
            " && (!has(self.acceptedCertifications) || self.effect == 'certification')",
            message="approval is only used by review rules, acceptedCertifications only by "
            "certification rules",
            check=_extras_match_effect,
            field_path=".effect",
        ),
    )


class RiskEntry(SpecModel):
    """An entry of the per-country risk list (R2): no constraint, but callers are warned."""

    id: DnsLabel
    message: LongText
    source: Source
    direction: Direction | None = None
    """Warn on flows leaving (`outbound`) or entering (`inbound`) the state; both when
    absent."""


class DataProtectionLaw(SpecModel):
    status: LawStatus
    as_of: Annotated[int, Field(ge=1990, le=2100)] | None = None
    """Year the statement refers to."""
    laws: Annotated[list[ShortText], Field(max_length=16)] | None = None
    """Laws named by the source."""
    source: Source


class Regulator(SpecModel):
    name: ShortText
    source: Source


class JurisdictionProfile(SpecModel):
    """What the data space knows about one state's law on cross-border data (R2)."""

    jurisdiction: Jurisdiction
    name: ShortText
    data_protection_law: DataProtectionLaw
    regulators: Annotated[list[Regulator], Field(max_length=16)] = Field(default_factory=list)
    memberships: Annotated[list[Regulator], Field(max_length=16)] = Field(default_factory=list)
    """Cross-border privacy frameworks the state has joined, e.g. APEC CBPR."""
    rules: Annotated[list[ProfileRule], ListType("map", ("id",)), Field(max_length=64)] = Field(
        default_factory=list
    )
    risk_list: Annotated[list[RiskEntry], ListType("map", ("id",)), Field(max_length=64)] = Field(
        default_factory=list
    )
    notes: Annotated[list[LongText], Field(max_length=32)] = Field(default_factory=list)
    """What the sources do not say, so nobody reads silence as permission."""

    def active_rules(self) -> list[ProfileRule]:
        return [r for r in self.rules if not r.disabled]
