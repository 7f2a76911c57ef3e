"""How rules become a decision for one flow: the precedence, in one place.

A *flow key* is (source node, destination node, classification, category). For each key:

1. Policy rules covering it are ranked by their policy's `priority`; only the highest rank
   counts. Within it the most restrictive action wins (deny > review > allow), and rules
   with different actions at one rank are a conflict. Specificity (naming a node instead
   of `selector: {}`, a category instead of all) never breaks a tie: a narrow allow must
   outrank a broad deny explicitly, so nothing loosens a rule silently.
2. No covering rule: deny (the schema's default).
3. Jurisdiction profile rules for the border crossed (source state outbound, destination
   state inbound) then bind the result; a policy can never loosen them: `deny` denies,
   `review` turns an allow into a review and adds its approvers, `certification` adds a
   certification the recipient must hold. Flows inside one state cross no border.

The engine precomputes this per key; the compiler uses the same expansion to find
conflicts; `explain` uses it to show the losing candidates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trustspace.api.common import parse_quantity
from trustspace.api.transferpolicy import (
    Approval,
    Approver,
    Channel,
    Desensitisation,
    Encryption,
    MaskOptions,
    TransferRule,
)
from trustspace.policy.decision import (
    ALL_CATEGORIES,
    RESTRICTIVENESS,
    UNCATEGORISED,
    ApprovalRequirement,
    ApproverRef,
    CertificationChoice,
    Decision,
    FieldProtection,
    RuleRef,
    Verdict,
)
from trustspace.policy.jurisdiction import (
    Direction,
    JurisdictionProfile,
    ProfileApproval,
    ProfileApprover,
    ProfileEffect,
    ProfileRule,
)

FlowKey = tuple[str, str, str, str]

#: Strongest first: when two winning rules desensitise one field differently, the stronger
#: method is applied (dropping hides more than pseudonymising, which hides more than masking).
METHOD_STRENGTH = {"drop": 0, "pseudonymise": 1, "mask": 2, "generalise": 3}


@dataclass(frozen=True, slots=True)
class Candidate:
    """A policy rule that covers a flow key."""

    priority: int
    policy: str
    rule: TransferRule
    ref: RuleRef

    @property
    def action(self) -> Verdict:
        return Verdict(self.rule.action.value)


@dataclass(frozen=True, slots=True)
class ProfileHit:
    """A profile rule that binds a flow key."""

    state: str
    rule: ProfileRule
    ref: RuleRef


def category_label(category: str) -> str:
    return category or "uncategorised"


# --- expansion --------------------------------------------------------------------------------


def parse_candidates(
    policies: Iterable[Mapping[str, Any]],
) -> list[tuple[Mapping[str, Any], list[Candidate]]]:
    """Rules of the bundle's policies as validated models, with their references."""
    out = []
    for policy in policies:
        cands = []
        for raw in policy["rules"]:
            rule = TransferRule.model_validate(raw)
            ref = RuleRef(
                "policy",
                str(policy["name"]),
                rule.name,
                rule.action.value,
                int(policy["priority"]),
                rule.description,
            )
            cands.append(Candidate(int(policy["priority"]), str(policy["name"]), rule, ref))
        out.append((policy, cands))
    return out


def expand(policies: Iterable[Mapping[str, Any]]) -> dict[FlowKey, list[Candidate]]:
    """Every flow key some policy rule covers, with the covering rules."""
    covered: dict[FlowKey, list[Candidate]] = defaultdict(list)
    for policy, candidates in parse_candidates(policies):
        pairs = [(s, d) for s in policy["sources"] for d in policy["destinations"] if s != d]
        for cand in candidates:
            cats = cand.rule.categories
            categories = [c.value for c in cats] if cats else ALL_CATEGORIES
            for cls in cand.rule.classifications:
                for cat in categories:
                    for src, dst in pairs:
                        covered[(src, dst, cls.value, cat)].append(cand)
    return covered


def candidates_for(policies: Iterable[Mapping[str, Any]], key: FlowKey) -> list[Candidate]:
    """The covering rules of one key, without expanding the whole bundle (explain)."""
    src, dst, cls, cat = key
    out = []
    for policy, candidates in parse_candidates(policies):
        if src not in policy["sources"] or dst not in policy["destinations"] or src == dst:
            continue
        for cand in candidates:
            if cls not in cand.rule.classifications:
                continue
            if cand.rule.categories and cat not in cand.rule.categories:
                continue
            out.append(cand)
    return out


def profile_ref(state: str, rule: ProfileRule) -> RuleRef:
    return RuleRef(
        "profile", state, rule.id, rule.effect.value, None, rule.source, rule.provisional
    )


def _covers(rule: ProfileRule, cls: str, cat: str) -> bool:
    if rule.classifications is not None and cls not in rule.classifications:
        return False
    if rule.categories is None:
        return True
    return cat != UNCATEGORISED and cat in rule.categories


def profile_hits(
    profiles: Mapping[str, JurisdictionProfile], src_state: str, dst_state: str, cls: str, cat: str
) -> list[ProfileHit]:
    if src_state == dst_state:
        return []
    hits = []
    for state, direction in ((src_state, Direction.OUTBOUND), (dst_state, Direction.INBOUND)):
        profile = profiles.get(state)
        if profile is None:
            continue
        for rule in profile.active_rules():
            if rule.direction == direction and _covers(rule, cls, cat):
                hits.append(ProfileHit(state, rule, profile_ref(state, rule)))
    return hits


def risk_warnings(
    profiles: Mapping[str, JurisdictionProfile], src_state: str, dst_state: str
) -> tuple[str, ...]:
    if src_state == dst_state:
        return ()
    out = []
    for state, direction in ((src_state, Direction.OUTBOUND), (dst_state, Direction.INBOUND)):
        profile = profiles.get(state)
        for entry in profile.risk_list if profile else ():
            if entry.direction in (None, direction):
                out.append(f"{state} risk {entry.id}: {entry.message} (source: {entry.source})")
    return tuple(out)


# --- resolution -------------------------------------------------------------------------------


def rank(
    candidates: Sequence[Candidate],
) -> tuple[int | None, Verdict, list[Candidate], list[Candidate]]:
    """(winning priority, winning action, rules with it, all rules at that priority)."""
    if not candidates:
        return None, Verdict.DENY, [], []
    top = max(c.priority for c in candidates)
    at_top = [c for c in candidates if c.priority == top]
    action = min((c.action for c in at_top), key=RESTRICTIVENESS.__getitem__)
    winners = sorted(
        (c for c in at_top if c.action == action), key=lambda c: (c.policy, c.rule.name)
    )
    return top, action, winners, at_top


def _approvers_of(
    approval: Approval | ProfileApproval, state: str | None
) -> tuple[ApproverRef, ...]:
    approvers: list[Approver | ProfileApprover] = list(approval.approvers)
    return tuple(
        ApproverRef(a.name, a.kind.value, a.display_name, getattr(a, "jurisdiction", None) or state)
        for a in sorted(approvers, key=lambda a: a.name)
    )


def _field_protection(d: Desensitisation) -> FieldProtection:
    options: dict[str, Any] = {}
    if d.method.value == "mask":
        options = (d.mask or MaskOptions()).model_dump(mode="json", by_alias=True)
    elif d.method.value == "generalise":
        options = {"level": d.generalise.level if d.generalise else 1}
    elif d.method.value == "pseudonymise" and d.pseudonymise is not None:
        options = {"keySecretRef": d.pseudonymise.key_secret_ref.model_dump(mode="json")}
    return FieldProtection(d.field, d.method.value, tuple(sorted(options.items())))


def _stronger(a: FieldProtection, b: FieldProtection) -> FieldProtection:
    sa, sb = METHOD_STRENGTH[a.method], METHOD_STRENGTH[b.method]
    if sa != sb:
        return a if sa < sb else b
    if a.method == "mask":
        merged = {
            "keepFirst": min(a.option("keepFirst", 0), b.option("keepFirst", 0)),
            "keepLast": min(a.option("keepLast", 4), b.option("keepLast", 4)),
            "maskCharacter": min(a.option("maskCharacter", "*"), b.option("maskCharacter", "*")),
        }
        return FieldProtection(a.field, "mask", tuple(sorted(merged.items())))
    if a.method == "generalise":
        return a if a.option("level", 1) >= b.option("level", 1) else b
    return min(a, b, key=lambda p: repr(p.options))


def merge_fields(groups: Iterable[Iterable[FieldProtection]]) -> tuple[FieldProtection, ...]:
    by_field: dict[str, FieldProtection] = {}
    for group in groups:
        for fp in group:
            by_field[fp.field] = _stronger(by_field[fp.field], fp) if fp.field in by_field else fp
    return tuple(by_field[f] for f in sorted(by_field))


def _min_opt(values: Iterable[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def dedupe_approvals(items: Iterable[ApprovalRequirement]) -> tuple[ApprovalRequirement, ...]:
    seen: dict[tuple[tuple[str, ...], int], ApprovalRequirement] = {}
    for item in items:
        known = seen.get(item.key)
        # The same group demanded by law and by a policy is quoted with the law's source.
        if known is None or (known.rule.kind == "policy" and item.rule.kind == "profile"):
            seen[item.key] = item
    return tuple(seen.values())


def resolve(
    key: FlowKey,
    candidates: Sequence[Candidate],
    hits: Sequence[ProfileHit],
    warnings: tuple[str, ...] = (),
) -> Decision:
    """The decision for one flow key (see the module docstring for the precedence)."""
    src, dst, cls, cat = key
    what = f"{cls} {category_label(cat)} data from {src} to {dst}"
    priority, action, winners, at_top = rank(candidates)
    conflicts = tuple(
        f"{c.ref} loses to {action.value} at priority {priority}"
        for c in sorted(at_top, key=lambda c: (c.policy, c.rule.name))
        if c.action != action
    )
    matched = [c.ref for c in winners]
    policies = tuple(sorted({c.policy for c in winners}))

    if not winners:
        return Decision(
            Verdict.DENY,
            f"no policy rule covers {what}: denied by default",
            matched=tuple(h.ref for h in hits if h.rule.effect == ProfileEffect.DENY),
            warnings=warnings,
        )
    if action == Verdict.DENY:
        return Decision(
            Verdict.DENY,
            f"{winners[0].ref} denies {what}",
            matched=tuple(matched),
            policies=policies,
            priority=priority,
            conflicts=conflicts,
            warnings=warnings,
        )

    denying = [h for h in hits if h.rule.effect == ProfileEffect.DENY]
    if denying:
        return Decision(
            Verdict.DENY,
            f"{denying[0].ref} denies {what}; a policy cannot loosen it",
            matched=(*matched, *(h.ref for h in denying)),
            policies=policies,
            priority=priority,
            conflicts=conflicts,
            warnings=warnings,
        )

    rules = [c.rule for c in winners]
    approvals = [
        ApprovalRequirement(
            _approvers_of(r.approval, None), r.approval.min_approvals, r.approval.timeout, c.ref
        )
        for c, r in zip(winners, rules, strict=True)
        if r.approval is not None
    ]
    verdict = action
    channel = (
        Channel.REVIEW.value
        if any(r.effective_channel == Channel.REVIEW for r in rules)
        else Channel.AUTO.value
    )
    reasons = [
        f"{winners[0].ref} {'allows' if action == Verdict.ALLOW else 'holds for review'} {what}"
    ]
    choices = []
    for hit in hits:
        matched.append(hit.ref)
        if hit.rule.effect == ProfileEffect.REVIEW and hit.rule.approval is not None:
            req = ApprovalRequirement(
                _approvers_of(hit.rule.approval, hit.state),
                hit.rule.approval.min_approvals,
                hit.rule.approval.timeout,
                hit.ref,
            )
            approvals.append(req)
            if verdict == Verdict.ALLOW:
                verdict = Verdict.REVIEW
            channel = Channel.REVIEW.value
            reasons.append(f"{hit.ref} requires {req}")
        elif hit.rule.effect == ProfileEffect.CERTIFICATION:
            accepted = frozenset(hit.rule.accepted_certifications or ())
            choices.append(CertificationChoice(accepted, hit.ref))
            reasons.append(
                f"{hit.ref} requires a recipient certified {' or '.join(sorted(accepted))}"
            )

    protections = [r.effective_protections for r in rules]
    encryption = (
        Encryption.SM4_CBC.value
        if all(p.encryption == Encryption.SM4_CBC for p in protections)
        else Encryption.SM4_GCM.value
    )
    fields = merge_fields(
        [_field_protection(d) for d in p.desensitisation or ()] for p in protections
    )
    sizes = [
        int(parse_quantity(r.limits.max_payload_size))
        if r.limits is not None and r.limits.max_payload_size is not None
        else None
        for r in rules
    ]
    rates = [r.limits.max_transfers_per_minute if r.limits else None for r in rules]
    certs = frozenset(c for r in rules for c in r.required_certifications or ())
    return Decision(
        verdict,
        "; ".join(reasons),
        channel=channel,
        encryption=encryption,
        signature="SM2",
        desensitisation=fields,
        approvals=dedupe_approvals(approvals),
        required_certifications=certs,
        certification_choices=tuple(choices),
        max_payload_size=_min_opt(sizes),
        max_transfers_per_minute=_min_opt(rates),
        matched=tuple(matched),
        policies=policies,
        priority=priority,
        conflicts=conflicts,
        warnings=warnings,
    )


def merge_decisions(parts: Sequence[tuple[str, Decision]]) -> Decision:
    """Data with several categories must satisfy the decision of each: the most restrictive
    verdict wins, and an allowed transfer carries every category's protections,
    approvals and certifications."""
    if len(parts) == 1:
        return parts[0][1]
    worst = min(RESTRICTIVENESS[d.verdict] for _, d in parts)
    verdict = next(d.verdict for _, d in parts if RESTRICTIVENESS[d.verdict] == worst)
    if verdict == Verdict.DENY:
        cat, first = next((c, d) for c, d in parts if d.verdict == Verdict.DENY)
        return Decision(
            Verdict.DENY,
            f"[{category_label(cat)}] {first.reason}",
            matched=first.matched,
            policies=first.policies,
            priority=first.priority,
            conflicts=first.conflicts,
            warnings=first.warnings,
        )
    decisions = [d for _, d in parts]
    matched: dict[RuleRef, None] = {}
    for d in decisions:
        matched.update(dict.fromkeys(d.matched))
    choices: dict[tuple[frozenset[str], RuleRef], CertificationChoice] = {}
    for d in decisions:
        for c in d.certification_choices:
            choices.setdefault((c.any_of, c.rule), c)
    return Decision(
        verdict,
        "; ".join(f"[{category_label(c)}] {d.reason}" for c, d in parts),
        channel=Channel.REVIEW.value
        if any(d.channel == Channel.REVIEW.value for d in decisions)
        else Channel.AUTO.value,
        encryption=Encryption.SM4_GCM.value
        if any(d.encryption == Encryption.SM4_GCM.value for d in decisions)
        else Encryption.SM4_CBC.value,
        signature="SM2",
        desensitisation=merge_fields(d.desensitisation for d in decisions),
        approvals=dedupe_approvals(a for d in decisions for a in d.approvals),
        required_certifications=frozenset().union(*(d.required_certifications for d in decisions)),
        certification_choices=tuple(choices.values()),
        max_payload_size=_min_opt(d.max_payload_size for d in decisions),
        max_transfers_per_minute=_min_opt(d.max_transfers_per_minute for d in decisions),
        matched=tuple(matched),
        policies=tuple(sorted({p for d in decisions for p in d.policies})),
        priority=max((d.priority for d in decisions if d.priority is not None), default=None),
        conflicts=tuple(dict.fromkeys(c for d in decisions for c in d.conflicts)),
        warnings=tuple(dict.fromkeys(w for d in decisions for w in d.warnings)),
    )
