"""What the gateway asks (`TransferRequest`) and what the policy core answers (`Decision`).

Plain frozen dataclasses rather than pydantic models: the engine hands out precomputed
decisions on its hot path, and building a validated model per transfer would cost more
than the decision itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from trustspace.api.constants import Classification, DataCategory


class Verdict(StrEnum):
    """Most restrictive first; the order is the precedence at equal priority."""

    DENY = "deny"
    REVIEW = "review"
    ALLOW = "allow"


#: Lower is more restrictive (deny > review > allow).
RESTRICTIVENESS = {Verdict.DENY: 0, Verdict.REVIEW: 1, Verdict.ALLOW: 2}

#: Key of data carrying no category: only rules that cover every category match it.
UNCATEGORISED = ""
ALL_CATEGORIES: tuple[str, ...] = (*sorted(c.value for c in DataCategory), UNCATEGORISED)
ALL_CLASSIFICATIONS: tuple[str, ...] = tuple(c.value for c in Classification)


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """One transfer the gateway is about to make (or an operator asks about)."""

    source: str
    """DataSpaceNode the data leaves."""
    destination: str
    """DataSpaceNode the data goes to."""
    classification: str
    """`public`, `internal`, `important` or `core` (R1)."""
    categories: frozenset[str] = frozenset()
    """Data categories of the payload, e.g. `{health, personal}`; empty for none."""
    purpose: str | None = None
    """Why the data moves. Recorded with the decision; no v1alpha1 rule conditions on it."""
    payload_size: int | None = None
    """Bytes; checked against the winning rules' `maxPayloadSize`."""
    recipient_certifications: frozenset[str] = frozenset()
    """Certifications the recipient holds, e.g. `{apec-cbpr}` (R2)."""

    @classmethod
    def of(
        cls,
        source: str,
        destination: str,
        classification: str,
        categories: Iterable[str] = (),
        *,
        purpose: str | None = None,
        payload_size: int | None = None,
        recipient_certifications: Iterable[str] = (),
    ) -> TransferRequest:
        """Build a request from loose values, checking classification and categories."""
        Classification(classification)
        cats = frozenset(categories)
        for cat in cats:
            DataCategory(cat)
        return cls(
            source,
            destination,
            classification,
            cats,
            purpose,
            payload_size,
            frozenset(recipient_certifications),
        )


@dataclass(frozen=True, slots=True)
class RuleRef:
    """A rule that took part in a decision: a TransferPolicy rule or a profile rule."""

    kind: str
    """`policy` or `profile`."""
    owner: str
    """Policy name, or the profile's state (e.g. `VN`)."""
    rule: str
    """Rule name (policy) or id (profile)."""
    effect: str
    """The rule's action or effect: allow, deny, review, certification."""
    priority: int | None = None
    """The policy's priority; None for profile rules (they are not ranked, they bind)."""
    source: str | None = None
    """Profile rules: where the constraint comes from. Policy rules: their description."""
    provisional: bool = False

    def __str__(self) -> str:
        if self.kind == "policy":
            return f"policy {self.owner}/{self.rule} (priority {self.priority}, {self.effect})"
        text = f"profile {self.owner}/{self.rule} ({self.effect}; source: {self.source})"
        return text + (" [provisional]" if self.provisional else "")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "owner": self.owner,
            "rule": self.rule,
            "effect": self.effect,
        }
        if self.priority is not None:
            out["priority"] = self.priority
        if self.source:
            out["source"] = self.source
        if self.provisional:
            out["provisional"] = True
        return out


@dataclass(frozen=True, slots=True)
class ApproverRef:
    name: str
    kind: str
    display_name: str | None = None
    jurisdiction: str | None = None

    def __str__(self) -> str:
        return self.display_name or self.name


@dataclass(frozen=True, slots=True)
class ApprovalRequirement:
    """`min_approvals` of `approvers` must sign (B5). Every requirement of a decision must be
    met on its own: approvals demanded by Vietnamese law do not count towards a policy's."""

    approvers: tuple[ApproverRef, ...]
    min_approvals: int
    timeout: str
    rule: RuleRef

    @property
    def key(self) -> tuple[tuple[str, ...], int]:
        return tuple(a.name for a in self.approvers), self.min_approvals

    def __str__(self) -> str:
        names = [a.name for a in self.approvers]
        if self.min_approvals == len(names):
            return "approval by " + " and ".join(names)
        return f"approval by {self.min_approvals} of " + ", ".join(names)

    def to_dict(self) -> dict[str, Any]:
        return {
            "approvers": [
                {
                    key: value
                    for key, value in (
                        ("name", a.name),
                        ("kind", a.kind),
                        ("displayName", a.display_name),
                        ("jurisdiction", a.jurisdiction),
                    )
                    if value
                }
                for a in self.approvers
            ],
            "minApprovals": self.min_approvals,
            "timeout": self.timeout,
            "rule": self.rule.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class FieldProtection:
    """How one field is desensitised before leaving the source node (B6)."""

    field: str
    method: str
    """`mask`, `pseudonymise`, `generalise` or `drop`."""
    options: tuple[tuple[str, Any], ...] = ()
    """The method's options as sorted (name, value) pairs, e.g. (("keepLast", 4),)."""

    def option(self, name: str, default: Any = None) -> Any:
        for key, value in self.options:
            if key == name:
                return value
        return default

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "method": self.method}
        if self.options:
            out[self.method] = dict(self.options)
        return out


@dataclass(frozen=True, slots=True)
class CertificationChoice:
    """The recipient must hold at least one of `any_of` (a profile's certification rule)."""

    any_of: frozenset[str]
    rule: RuleRef


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one transfer. `verdict` is final; the rest says how to carry it out."""

    verdict: Verdict
    reason: str
    channel: str | None = None
    """`auto` or `review` (B7); None when denied."""
    encryption: str | None = None
    signature: str | None = None
    desensitisation: tuple[FieldProtection, ...] = ()
    approvals: tuple[ApprovalRequirement, ...] = ()
    required_certifications: frozenset[str] = frozenset()
    """The recipient must hold all of these (policy rules)."""
    certification_choices: tuple[CertificationChoice, ...] = ()
    """The recipient must hold one of each (profile rules)."""
    max_payload_size: int | None = None
    max_transfers_per_minute: int | None = None
    matched: tuple[RuleRef, ...] = ()
    """Every rule that decided or constrained the outcome, policies first."""
    policies: tuple[str, ...] = ()
    """Policies whose rules won; their circuit breakers govern the flow (B8)."""
    priority: int | None = None
    """Priority of the winning policy rules; None when no policy rule covers the flow."""
    conflicts: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    """Risk-list entries of the states involved (R2)."""
    bundle_version: int | None = field(default=None, compare=False)
    bundle_hash: str | None = field(default=None, compare=False)

    @property
    def allowed(self) -> bool:
        return self.verdict == Verdict.ALLOW

    @property
    def min_approvals_total(self) -> int:
        return sum(a.min_approvals for a in self.approvals)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for audit records and the CLI's `-o json`."""
        out: dict[str, Any] = {"verdict": self.verdict.value, "reason": self.reason}
        if self.channel:
            out["channel"] = self.channel
        if self.encryption:
            out["protections"] = {
                "encryption": self.encryption,
                "signature": self.signature,
                "desensitisation": [d.to_dict() for d in self.desensitisation],
            }
        if self.approvals:
            out["approvals"] = [a.to_dict() for a in self.approvals]
        if self.required_certifications:
            out["requiredCertifications"] = sorted(self.required_certifications)
        if self.certification_choices:
            out["certificationChoices"] = [
                {"anyOf": sorted(c.any_of), "rule": c.rule.to_dict()}
                for c in self.certification_choices
            ]
        limits = {
            k: v
            for k, v in (
                ("maxPayloadSize", self.max_payload_size),
                ("maxTransfersPerMinute", self.max_transfers_per_minute),
            )
            if v is not None
        }
        if limits:
            out["limits"] = limits
        out["matched"] = [m.to_dict() for m in self.matched]
        if self.policies:
            out["policies"] = list(self.policies)
        if self.priority is not None:
            out["priority"] = self.priority
        if self.conflicts:
            out["conflicts"] = list(self.conflicts)
        if self.warnings:
            out["warnings"] = list(self.warnings)
        if self.bundle_version is not None:
            out["bundle"] = {"version": self.bundle_version, "hash": self.bundle_hash}
        return out
