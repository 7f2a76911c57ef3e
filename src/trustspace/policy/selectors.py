"""Which DataSpaceNodes a TransferPolicy's `sources` / `destinations` select.

Kubernetes label-selector semantics (a `NotIn` matches nodes without the key), and the
schema's rule that every stated criterion must match; `selector: {}` selects every node.
"""

from __future__ import annotations

from collections.abc import Mapping

from trustspace.api.common import LabelSelector, LabelSelectorRequirement, SelectorOperator
from trustspace.api.transferpolicy import NodeSelector


def _requirement_matches(req: LabelSelectorRequirement, labels: Mapping[str, str]) -> bool:
    values = req.values or []
    if req.operator == SelectorOperator.IN:
        return req.key in labels and labels[req.key] in values
    if req.operator == SelectorOperator.NOT_IN:
        return req.key not in labels or labels[req.key] not in values
    if req.operator == SelectorOperator.EXISTS:
        return req.key in labels
    return req.key not in labels


def label_selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    for key, value in (selector.match_labels or {}).items():
        if labels.get(key) != value:
            return False
    return all(_requirement_matches(r, labels) for r in selector.match_expressions or [])


def selects(
    selector: NodeSelector, name: str, jurisdiction: str, labels: Mapping[str, str]
) -> bool:
    if selector.names is not None and name not in selector.names:
        return False
    if selector.jurisdictions is not None and jurisdiction not in selector.jurisdictions:
        return False
    return selector.selector is None or label_selector_matches(selector.selector, labels)
