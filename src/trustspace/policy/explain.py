"""Why a transfer gets its decision, and what would change it.

For each category of the data: every policy rule that covers the flow (winner and losers,
by priority), every profile rule that binds it (with its source), and concrete changes
that would move the verdict: a rule at a higher priority, approvals, a certification, or
the statement that no policy can change it because a jurisdiction profile binds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trustspace.api.constants import JURISDICTION_NAMES, Jurisdiction
from trustspace.policy.decision import UNCATEGORISED, Decision, TransferRequest, Verdict
from trustspace.policy.engine import PolicyEngine
from trustspace.policy.jurisdiction import ProfileEffect
from trustspace.policy.resolution import (
    Candidate,
    ProfileHit,
    candidates_for,
    category_label,
    profile_hits,
    rank,
)


@dataclass
class CategoryExplanation:
    category: str
    decision: Decision
    candidates: list[tuple[Candidate, bool]]
    """Covering policy rules, highest priority first, with whether each won."""
    profile: list[ProfileHit]


@dataclass
class Explanation:
    request: TransferRequest
    decision: Decision
    parts: list[CategoryExplanation]
    changes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "request": {
                "source": self.request.source,
                "destination": self.request.destination,
                "classification": self.request.classification,
                "categories": sorted(self.request.categories),
                "purpose": self.request.purpose,
            },
            "decision": self.decision.to_dict(),
            "categories": [
                {
                    "category": category_label(p.category),
                    "verdict": p.decision.verdict.value,
                    "policyRules": [{**c.ref.to_dict(), "won": won} for c, won in p.candidates],
                    "profileRules": [h.ref.to_dict() for h in p.profile],
                }
                for p in self.parts
            ],
            "whatWouldChangeIt": self.changes,
        }

    def render(self) -> str:
        d, r = self.decision, self.request
        lines = [
            f"Decision: {d.verdict.value.upper()}"
            + (f" (channel {d.channel})" if d.channel and d.verdict != Verdict.DENY else ""),
            f"  {r.classification} {'/'.join(sorted(r.categories)) or 'uncategorised'} data "
            f"from {r.source} to {r.destination}"
            + (f", purpose: {r.purpose}" if r.purpose else ""),
            f"  reason: {d.reason}",
        ]
        if d.bundle_version is not None:
            lines.append(f"  bundle: version {d.bundle_version}, sm3 {d.bundle_hash}")
        if d.verdict != Verdict.DENY:
            lines.append(f"  protections: {d.encryption}, {d.signature} signature")
            lines.extend(
                f"    desensitise {p.field}: {p.method}"
                + (f" {dict(p.options)}" if p.options else "")
                for p in d.desensitisation
            )
            lines.extend(f"  needs {a} (rule {a.rule})" for a in d.approvals)
            if d.required_certifications:
                lines.append(f"  recipient holds: {', '.join(sorted(d.required_certifications))}")
            if d.max_payload_size is not None:
                lines.append(f"  max payload: {d.max_payload_size} bytes")
        lines.append("Rules:")
        for part in self.parts:
            lines.append(f"  [{category_label(part.category)}] -> {part.decision.verdict.value}")
            if not part.candidates:
                lines.append("    no policy rule covers this flow (default deny)")
            for cand, won in part.candidates:
                mark = "wins " if won else "loses"
                why = f": {cand.ref.source}" if cand.ref.source else ""
                lines.append(f"    {mark} {cand.ref}{why}")
            for hit in part.profile:
                lines.append(f"    binds {hit.ref}")
        for warning in d.warnings:
            lines.append(f"Warning: {warning}")
        lines.append("What would change it:")
        lines.extend(f"  - {c}" for c in self.changes or ["nothing a TransferPolicy can do"])
        return "\n".join(lines)


def _state(engine: PolicyEngine, node: str) -> str:
    code = engine.nodes.get(node, "?")
    try:
        return f"{code}, {JURISDICTION_NAMES[Jurisdiction(code)]}"
    except ValueError:
        return code


def explain(engine: PolicyEngine, request: TransferRequest) -> Explanation:
    decision = engine.decide(request)
    src, dst, cls = request.source, request.destination, request.classification
    parts: list[CategoryExplanation] = []
    known = src in engine.nodes and dst in engine.nodes and src != dst
    for cat in sorted(request.categories) or [UNCATEGORISED]:
        key = (src, dst, cls, cat)
        cands = candidates_for(engine.bundle.policies, key) if known else []
        _, _, winners, _ = rank(cands)
        ordered = sorted(cands, key=lambda c: (-c.priority, c.policy, c.rule.name))
        hits = (
            profile_hits(engine.profiles, engine.nodes[src], engine.nodes[dst], cls, cat)
            if known
            else []
        )
        parts.append(
            CategoryExplanation(
                cat, engine.base_decision(key), [(c, c in winners) for c in ordered], hits
            )
        )
    out = Explanation(request, decision, parts)
    out.changes = (
        _changes(engine, request, decision, parts)
        if known
        else [
            f"use nodes known to bundle version {engine.bundle.version}: "
            + ", ".join(sorted(engine.nodes))
        ]
    )
    return out


def _changes(
    engine: PolicyEngine,
    request: TransferRequest,
    decision: Decision,
    parts: list[CategoryExplanation],
) -> list[str]:
    src, dst, cls = request.source, request.destination, request.classification
    changes: list[str] = []

    def flow(cat: str) -> str:
        return (
            f"{cls}/{category_label(cat)} from {src} ({_state(engine, src)}) "
            f"to {dst} ({_state(engine, dst)})"
        )

    # Core data is never simply allowed (R1, B5): the most a rule can do is review it.
    opening = "a review rule for" if cls == "core" else "a rule allowing"
    for part in parts:
        base = part.decision
        binding_deny = [h for h in part.profile if h.rule.effect == ProfileEffect.DENY]
        binding_review = [h for h in part.profile if h.rule.effect == ProfileEffect.REVIEW]
        if binding_deny:
            changes.append(
                f"nothing in a TransferPolicy: {binding_deny[0].ref} denies {flow(part.category)}"
                "; only a profile override by the platform team can"
            )
            continue
        if base.verdict == Verdict.DENY:
            if base.priority is None:
                changes.append(
                    f"{opening} {flow(part.category)} at any priority (none covers it now)"
                )
            else:
                changes.append(
                    f"{opening} {flow(part.category)} with priority > {base.priority} "
                    f"(at priority {base.priority} the deny still wins)"
                )
            changes.extend(
                f"even then, {h.ref} would require "
                + (
                    f"approval by {h.rule.approval.min_approvals} of "
                    f"{', '.join(a.name for a in h.rule.approval.approvers)}"
                    if h.rule.approval
                    else "a recipient certified "
                    + " or ".join(h.rule.accepted_certifications or [])
                )
                for h in part.profile
            )
        elif base.verdict == Verdict.REVIEW:
            if binding_review:
                changes.append(
                    f"it cannot take the automatic channel: {binding_review[0].ref} requires "
                    "review whatever the policies say"
                )
            else:
                changes.append(
                    f"a rule with priority > {base.priority} allowing {flow(part.category)} "
                    "on channel auto would skip the review"
                )
        elif decision.verdict != Verdict.DENY:
            changes.append(
                f"a rule with priority >= {base.priority} denying {flow(part.category)} "
                "would stop it (deny wins at equal priority)"
            )

    if decision.verdict == Verdict.REVIEW:
        changes.extend(f"{a} lets it proceed ({a.rule})" for a in decision.approvals)
    held = request.recipient_certifications
    for merged in [p.decision for p in parts]:
        missing = merged.required_certifications - held
        if missing and merged.verdict != Verdict.DENY:
            changes.append(f"certification {', '.join(sorted(missing))} held by recipient {dst}")
        for choice in merged.certification_choices:
            if choice.any_of.isdisjoint(held) and merged.verdict != Verdict.DENY:
                changes.append(
                    f"certification {' or '.join(sorted(choice.any_of))} held by recipient "
                    f"{dst} ({choice.rule})"
                )
    limit = decision.max_payload_size
    if limit is None:
        limit = min(
            (p.decision.max_payload_size for p in parts if p.decision.max_payload_size),
            default=None,
        )
    if limit is not None and request.payload_size is not None and request.payload_size > limit:
        changes.append(f"a payload of at most {limit} bytes")
    return list(dict.fromkeys(changes))
