"""TransferPolicies + DataSpaceNodes + jurisdiction profiles -> one versioned policy bundle.

Deterministic: selectors are resolved to sorted node names, rules and every set-like list
are sorted, and the result is canonical JSON, so the same inputs in any order give the same
bytes and the same SM3 hash. The caller supplies the (monotonic) version; `content_hash`
tells it whether anything changed since the last bundle. A per-policy report carries what
`TransferPolicy.status` needs: accepted, selected nodes, conflicts (capped).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from trustspace.api import DataSpaceNode, TransferPolicy, format_errors
from trustspace.api.constants import PolicyReason
from trustspace.api.transferpolicy import MAX_CONFLICTS, Conflict
from trustspace.policy.bundle import BUNDLE_API_VERSION, PolicyBundle
from trustspace.policy.decision import RESTRICTIVENESS
from trustspace.policy.profile_loader import ProfileSet, load_profiles
from trustspace.policy.resolution import Candidate, FlowKey, category_label, expand
from trustspace.policy.selectors import selects

PolicyInput = TransferPolicy | Mapping[str, Any]
NodeInput = DataSpaceNode | Mapping[str, Any]

# Lists whose order means nothing, sorted so that reordering them changes no byte.
_SORTED_SCALARS = {"classifications", "categories", "requiredCertifications"}
_SORTED_BY = {"rules": "name", "approvers": "name", "desensitisation": "field"}


class CompileError(ValueError):
    """The inputs cannot form one bundle (e.g. two policies with one name)."""


@dataclass
class PolicyReport:
    """Compile result of one TransferPolicy, shaped for its status."""

    name: str
    accepted: bool
    compiled: bool
    reason: PolicyReason
    message: str
    source_nodes: tuple[str, ...] = ()
    destination_nodes: tuple[str, ...] = ()
    conflicts: list[Conflict] = field(default_factory=list)
    """At most `MAX_CONFLICTS`, sorted; `conflicts_total` counts all."""
    conflicts_total: int = 0

    @property
    def selected_nodes(self) -> int:
        """Nodes the policy applies to, as source or destination (status.selectedNodes)."""
        return len(set(self.source_nodes) | set(self.destination_nodes))


@dataclass
class CompileResult:
    bundle: PolicyBundle
    reports: dict[str, PolicyReport]
    node_errors: dict[str, str] = field(default_factory=dict)
    """Nodes left out of the bundle because their spec did not validate."""


def _parse_policy(obj: PolicyInput) -> TransferPolicy:
    return obj if isinstance(obj, TransferPolicy) else TransferPolicy.from_body(obj)


def _parse_node(obj: NodeInput) -> DataSpaceNode:
    return obj if isinstance(obj, DataSpaceNode) else DataSpaceNode.from_body(obj)


def _name_of(obj: PolicyInput | NodeInput) -> str:
    if isinstance(obj, TransferPolicy | DataSpaceNode):
        return obj.name
    return str((obj.get("metadata") or {}).get("name", ""))


def _namespace_of(obj: PolicyInput | NodeInput) -> str:
    if isinstance(obj, TransferPolicy | DataSpaceNode):
        return obj.namespace
    return str((obj.get("metadata") or {}).get("namespace", "") or "")


def _normalise(value: Any, key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: _normalise(v, k) for k, v in value.items()}
    if isinstance(value, list):
        items = [_normalise(v) for v in value]
        if key in _SORTED_SCALARS:
            return sorted(items)
        if key in _SORTED_BY:
            return sorted(items, key=lambda i: i[_SORTED_BY[key]])
        return items
    return value


def compile_bundle(
    policies: Iterable[PolicyInput],
    nodes: Iterable[NodeInput],
    profiles: ProfileSet | None = None,
    *,
    version: int,
    namespace: str | None = None,
) -> CompileResult:
    """Compile one namespace's policies into a bundle.

    `namespace` keeps only objects of that namespace; without it all objects must share
    one (files without a namespace count as ""). Invalid policies are reported, not
    compiled; invalid nodes are left out and listed in `node_errors`.
    """
    profiles = profiles if profiles is not None else load_profiles()
    policies = [p for p in policies if namespace is None or _namespace_of(p) == namespace]
    nodes = [n for n in nodes if namespace is None or _namespace_of(n) == namespace]
    spaces = {_namespace_of(o) for o in [*policies, *nodes]}
    if len(spaces) > 1:
        raise CompileError(f"objects from several namespaces {sorted(spaces)}: pass namespace=")
    ns = namespace if namespace is not None else next(iter(spaces), "")

    node_table, node_errors = _nodes(nodes)
    reports: dict[str, PolicyReport] = {}
    entries: list[dict[str, Any]] = []
    for obj in sorted(policies, key=_name_of):
        name = _name_of(obj)
        if name in reports:
            raise CompileError(f"two TransferPolicies named {name!r}")
        try:
            policy = _parse_policy(obj)
        except ValidationError as exc:
            reports[name] = PolicyReport(
                name, False, False, PolicyReason.INVALID_SPEC, "; ".join(format_errors(exc))
            )
            continue
        sources = tuple(
            n for n, (j, labels) in node_table.items() if selects(policy.spec.sources, n, j, labels)
        )
        dests = tuple(
            n
            for n, (j, labels) in node_table.items()
            if selects(policy.spec.destinations, n, j, labels)
        )
        if not sources or not dests:
            side = "sources" if not sources else "destinations"
            reports[name] = PolicyReport(
                name,
                False,
                False,
                PolicyReason.NO_MATCHING_NODES,
                f"{side} select no DataSpaceNode in the namespace",
                sources,
                dests,
            )
            continue
        spec = policy.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        entries.append(
            _normalise(
                {
                    "name": name,
                    "priority": policy.spec.priority,
                    "sources": list(sources),
                    "destinations": list(dests),
                    "rules": spec["rules"],
                    "circuitBreaker": spec["circuitBreaker"],
                }
            )
        )
        reports[name] = PolicyReport(name, True, True, PolicyReason.COMPILED, "", sources, dests)

    bundle = PolicyBundle(
        {
            "apiVersion": BUNDLE_API_VERSION,
            "version": version,
            "namespace": ns,
            "nodes": {n: {"jurisdiction": j} for n, (j, _) in node_table.items()},
            "policies": entries,
            "profiles": profiles.data,
            "profilesHash": profiles.hash,
        }
    )
    _report_conflicts(bundle, reports)
    for report in reports.values():
        if report.compiled:
            report.message = (
                f"compiled into bundle version {bundle.version} ({bundle.hash[:12]}): "
                f"{len(report.source_nodes)} source and {len(report.destination_nodes)} "
                f"destination nodes"
                + (f", {report.conflicts_total} conflicts" if report.conflicts_total else "")
            )
            if report.conflicts_total:
                report.reason = PolicyReason.CONFLICTS_FOUND
    return CompileResult(bundle, reports, node_errors)


def _nodes(
    nodes: Iterable[NodeInput],
) -> tuple[dict[str, tuple[str, dict[str, str]]], dict[str, str]]:
    table: dict[str, tuple[str, dict[str, str]]] = {}
    errors: dict[str, str] = {}
    for obj in nodes:
        name = _name_of(obj)
        if name in table or name in errors:
            raise CompileError(f"two DataSpaceNodes named {name!r}")
        try:
            node = _parse_node(obj)
        except ValidationError as exc:
            errors[name] = "; ".join(format_errors(exc))
            continue
        labels = {str(k): str(v) for k, v in (node.metadata.get("labels") or {}).items()}
        table[name] = (node.spec.jurisdiction.value, labels)
    return dict(sorted(table.items())), errors


@dataclass
class _Overlap:
    flows: int = 0
    example: FlowKey | None = None
    winner: str = ""


def _report_conflicts(bundle: PolicyBundle, reports: dict[str, PolicyReport]) -> None:
    """Rules that decide one flow differently at one priority (status.conflicts)."""
    overlaps: dict[tuple[str, str, str, str], _Overlap] = defaultdict(_Overlap)
    for key, candidates in expand(bundle.policies).items():
        by_priority: dict[int, list[Candidate]] = defaultdict(list)
        for cand in candidates:
            by_priority[cand.priority].append(cand)
        for level in by_priority.values():
            if len({c.action for c in level}) < 2:
                continue
            winner = min((c.action for c in level), key=RESTRICTIVENESS.__getitem__)
            for a in level:
                for b in level:
                    if a.action == b.action:
                        continue
                    o = overlaps[(a.policy, a.rule.name, b.policy, b.rule.name)]
                    o.flows += 1
                    o.winner = winner.value
                    if o.example is None or key < o.example:
                        o.example = key
    per_policy: dict[str, list[Conflict]] = defaultdict(list)
    for (policy, rule, other, other_rule), o in sorted(overlaps.items()):
        assert o.example is not None
        src, dst, cls, cat = o.example
        per_policy[policy].append(
            Conflict(
                rule=rule,
                policy=other,
                other_rule=other_rule,
                message=(
                    f"overlaps on {o.flows} flow(s), e.g. {cls} {category_label(cat)} from "
                    f"{src} to {dst}, at equal priority; {o.winner} wins (deny > review > allow)"
                ),
            )
        )
    for name, conflicts in per_policy.items():
        report = reports[name]
        report.conflicts_total = len(conflicts)
        report.conflicts = conflicts[:MAX_CONFLICTS]
