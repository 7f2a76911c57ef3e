"""Decisions for transfers, from a compiled bundle, in a few dict lookups.

Every flow key some rule covers is resolved once when the engine loads a bundle
(`resolution.resolve`: priority, restrictiveness, profiles); a decision is then one lookup
plus the checks that depend on the request itself (recipient certifications, payload size).
Data with several categories merges the per-category decisions once and caches the result.
Uncovered flows are denied (the schema's default).

The gateway's entry point::

    engine = PolicyEngine(PolicyBundle.open_envelope(data, trusted_hub_keys))
    decision = engine.decide(TransferRequest.of("vn-hanoi", "cn-nanning", "important",
                                                ["trade"], payload_size=n,
                                                recipient_certifications=certs))
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from trustspace.policy.bundle import PolicyBundle
from trustspace.policy.decision import (
    ALL_CATEGORIES,
    ALL_CLASSIFICATIONS,
    UNCATEGORISED,
    Decision,
    TransferRequest,
    Verdict,
)
from trustspace.policy.jurisdiction import JurisdictionProfile
from trustspace.policy.profile_loader import ProfileSet
from trustspace.policy.resolution import (
    FlowKey,
    ProfileHit,
    category_label,
    expand,
    merge_decisions,
    profile_hits,
    resolve,
    risk_warnings,
)

_KNOWN_CLASSIFICATIONS = frozenset(ALL_CLASSIFICATIONS)
_KNOWN_CATEGORIES = frozenset(ALL_CATEGORIES) - {UNCATEGORISED}
#: Bounds the memory of merged multi-category decisions; a full cache is simply dropped.
_CACHE_LIMIT = 200_000


class PolicyEngine:
    """Evaluates transfer requests against one bundle. Immutable after construction; build
    a new engine for a new bundle and swap the reference (no locking needed)."""

    def __init__(self, bundle: PolicyBundle) -> None:
        self.bundle = bundle
        self.nodes: dict[str, str] = {n: str(v["jurisdiction"]) for n, v in bundle.nodes.items()}
        self.profiles: dict[str, JurisdictionProfile] = {
            p.jurisdiction.value: p for p in ProfileSet.from_data(bundle.profiles)
        }
        self._table: dict[FlowKey, Decision] = {}
        hits_cache: dict[tuple[str, str, str, str], list[ProfileHit]] = {}
        for key, candidates in expand(bundle.policies).items():
            src, dst, cls, cat = key
            if src not in self.nodes or dst not in self.nodes:
                continue
            states = (self.nodes[src], self.nodes[dst], cls, cat)
            hits = hits_cache.get(states)
            if hits is None:
                hits = hits_cache[states] = profile_hits(self.profiles, *states)
            decision = resolve(key, candidates, hits, self._warnings(src, dst))
            self._table[key] = self._stamp(decision)
        self._cache: dict[tuple[str, str, str, frozenset[str]], Decision] = {}

    # --- the hot path -------------------------------------------------------------------------

    def decide(self, request: TransferRequest) -> Decision:
        """The decision for one transfer. Never raises for unknown input: it denies."""
        key = (request.source, request.destination, request.classification, request.categories)
        decision = self._cache.get(key)
        if decision is None:
            decision = self._flow_decision(*key)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = decision
        if decision.verdict == Verdict.DENY:
            return decision
        return self._request_checks(decision, request)

    def _request_checks(self, decision: Decision, request: TransferRequest) -> Decision:
        held = request.recipient_certifications
        missing = decision.required_certifications - held
        if missing:
            return self._deny(
                decision,
                f"recipient {request.destination} lacks certification "
                f"{', '.join(sorted(missing))} required by {', '.join(decision.policies)}",
            )
        for choice in decision.certification_choices:
            if choice.any_of.isdisjoint(held):
                return self._deny(
                    decision,
                    f"recipient {request.destination} holds none of "
                    f"{', '.join(sorted(choice.any_of))} required by {choice.rule}",
                )
        limit = decision.max_payload_size
        if limit is not None and request.payload_size is not None and request.payload_size > limit:
            return self._deny(
                decision, f"payload of {request.payload_size} bytes exceeds the limit of {limit}"
            )
        return decision

    # --- building decisions -------------------------------------------------------------------

    def _flow_decision(self, src: str, dst: str, cls: str, categories: frozenset[str]) -> Decision:
        for node in (src, dst):
            if node not in self.nodes:
                return self._stamp(Decision(Verdict.DENY, f"unknown node {node!r}: not in bundle"))
        if src == dst:
            return self._stamp(Decision(Verdict.DENY, "source and destination are the same node"))
        if cls not in _KNOWN_CLASSIFICATIONS:
            return self._stamp(Decision(Verdict.DENY, f"unknown classification {cls!r}"))
        unknown = sorted(categories - _KNOWN_CATEGORIES)
        if unknown:
            return self._stamp(Decision(Verdict.DENY, f"unknown categories {unknown}"))
        cats = sorted(categories) or [UNCATEGORISED]
        parts = [(cat, self.base_decision((src, dst, cls, cat))) for cat in cats]
        return self._stamp(merge_decisions(parts))

    def base_decision(self, key: FlowKey) -> Decision:
        """The precomputed decision of one flow key, before request checks."""
        found = self._table.get(key)
        if found is not None:
            return found
        src, dst, cls, cat = key
        return self._stamp(
            Decision(
                Verdict.DENY,
                f"no policy rule covers {cls} {category_label(cat)} data from {src} to {dst}: "
                "denied by default",
                warnings=self._warnings(src, dst),
            )
        )

    def _warnings(self, src: str, dst: str) -> tuple[str, ...]:
        return risk_warnings(self.profiles, self.nodes.get(src, ""), self.nodes.get(dst, ""))

    def _stamp(self, decision: Decision) -> Decision:
        return replace(decision, bundle_version=self.bundle.version, bundle_hash=self.bundle.hash)

    @staticmethod
    def _deny(decision: Decision, reason: str) -> Decision:
        return Decision(
            Verdict.DENY,
            reason,
            matched=decision.matched,
            policies=decision.policies,
            priority=decision.priority,
            certification_choices=decision.certification_choices,
            required_certifications=decision.required_certifications,
            max_payload_size=decision.max_payload_size,
            warnings=decision.warnings,
            bundle_version=decision.bundle_version,
            bundle_hash=decision.bundle_hash,
        )

    # --- views --------------------------------------------------------------------------------

    def flow_table(self) -> Iterator[tuple[FlowKey, Decision]]:
        """Every covered flow key and its decision, sorted (for export, e.g. to Rego)."""
        for key in sorted(self._table):
            yield key, self._table[key]

    def __len__(self) -> int:
        return len(self._table)
