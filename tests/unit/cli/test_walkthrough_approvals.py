"""Whom the walk-through (quickstart, e2e) asks to approve a held transfer."""

from __future__ import annotations

from trustspace.quickstart.walkthrough import approvers_to_ask


def test_an_approver_named_by_two_groups_is_asked_once() -> None:
    """Seen on kind: both groups listed the same approver first, the walk-through asked it
    twice and the gateway refused the second decision as a duplicate (409)."""
    groups = [
        {"minApprovals": 1, "approvers": ["dpo", "moph"]},
        {"minApprovals": 2, "approvers": ["dpo", "park-board", "moph"]},
    ]
    asked = approvers_to_ask(groups)
    assert asked == ["dpo", "park-board"]
    assert len(asked) == len(set(asked))
    for group in groups:
        assert len(set(asked) & set(group["approvers"])) >= group["minApprovals"]


def test_disjoint_groups_each_get_their_minimum_in_order() -> None:
    groups = [
        {"minApprovals": 2, "approvers": ["a", "b", "c"]},
        {"minApprovals": 1, "approvers": ["x", "y"]},
    ]
    assert approvers_to_ask(groups) == ["a", "b", "x"]
