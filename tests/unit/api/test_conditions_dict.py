"""The dict-level condition setter every controller applies its conditions with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trustspace.api.conditions import MAX_MESSAGE, condition_dict, set_condition

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
LATER = T0 + timedelta(minutes=5)


def test_a_new_condition_starts_now_at_second_precision() -> None:
    c = condition_dict(None, "Ready", True, "Reconciled", "ok", observed_generation=3, now=T0)
    assert c == {
        "type": "Ready",
        "status": "True",
        "reason": "Reconciled",
        "message": "ok",
        "observedGeneration": 3,
        "lastTransitionTime": "2026-01-01T12:00:00Z",
    }


def test_transition_time_moves_only_when_status_changes() -> None:
    first = condition_dict([], "Ready", False, "Provisioning", now=T0)
    held = condition_dict([first], "Ready", False, "AgentUnavailable", "crashed", now=LATER)
    assert held["lastTransitionTime"] == first["lastTransitionTime"]
    assert (held["reason"], held["message"]) == ("AgentUnavailable", "crashed")
    moved = condition_dict([held], "Ready", True, "Reconciled", now=LATER)
    assert moved["lastTransitionTime"] == "2026-01-01T12:05:00Z"


def test_other_types_do_not_count_as_previous() -> None:
    other = condition_dict([], "Degraded", False, "Healthy", now=T0)
    c = condition_dict([other], "Ready", False, "Provisioning", now=LATER)
    assert c["lastTransitionTime"] == "2026-01-01T12:05:00Z"


def test_no_generation_no_field() -> None:
    assert "observedGeneration" not in condition_dict(None, "Ready", True, "Reconciled", now=T0)


def test_one_message_limit_for_dicts_and_models() -> None:
    long = "x" * (MAX_MESSAGE + 10)
    assert len(condition_dict(None, "Ready", True, "Reconciled", long)["message"]) == MAX_MESSAGE
    (model,) = set_condition([], "Ready", True, "Reconciled", long, now=T0)
    assert len(model.message) == MAX_MESSAGE
    assert MAX_MESSAGE <= 32768, "Kubernetes refuses longer condition messages"
