"""Python-side behaviour of the models: parsing helpers, conditions, round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from trustspace.api import (
    DataSpaceNode,
    MirrorLink,
    TransferPolicy,
    format_errors,
    parse_resource,
    set_condition,
)
from trustspace.api.common import format_duration, parse_duration, parse_quantity
from trustspace.api.conditions import find_condition, is_condition_true, remove_condition
from trustspace.api.constants import ConditionStatus, NodeConditionType, NodePhase, NodeReason
from trustspace.api.dataspacenode import ActiveKey, DataSpaceNodeStatus, PreviousKey
from trustspace.api.transferpolicy import Action, Channel, TransferRule

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("15m", 900),
        ("720h", 2_592_000),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("250ms", 0.25),
        ("0s", 0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "7 days", "-1h", "1d", "h", "1H", "0"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_format_duration_round_trips() -> None:
    for seconds in (1, 59, 60, 61, 3600, 5400, 86_400 + 7):
        delta = timedelta(seconds=seconds)
        assert parse_duration(format_duration(delta)) == delta
    assert format_duration(timedelta(0)) == "0s"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1Gi", 2**30),
        ("512Mi", 512 * 2**20),
        ("1G", 10**9),
        ("100k", 100_000),
        ("1e6", 10**6),
        ("1.5Ki", 1536),
        ("250m", Decimal("0.25")),
        ("7", 7),
    ],
)
def test_parse_quantity(text: str, value: Decimal | int) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "lots", "1 Gi", "-1Gi", "1GB", "Gi"])
def test_parse_quantity_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        parse_quantity(text)


def test_set_condition_keeps_transition_time_while_status_holds() -> None:
    conditions = set_condition(
        [], NodeConditionType.READY, False, NodeReason.PROVISIONING, now=T0, observed_generation=1
    )
    later = T0 + timedelta(minutes=5)
    conditions = set_condition(
        conditions,
        NodeConditionType.READY,
        False,
        NodeReason.AGENT_UNAVAILABLE,
        "agent crashed",
        now=later,
        observed_generation=2,
    )
    (ready,) = conditions
    assert ready.last_transition_time == T0
    assert (ready.reason, ready.message, ready.observed_generation) == (
        "AgentUnavailable",
        "agent crashed",
        2,
    )

    conditions = set_condition(
        conditions, NodeConditionType.READY, True, NodeReason.RECONCILED, now=later
    )
    assert find_condition(conditions, "Ready") is not None
    assert conditions[0].last_transition_time == later
    assert is_condition_true(conditions, "Ready")


def test_set_condition_adds_and_replaces_in_place() -> None:
    conditions = set_condition([], "Ready", ConditionStatus.UNKNOWN, "Provisioning", now=T0)
    conditions = set_condition(conditions, "KeyReady", True, "KeyIssued", now=T0)
    conditions = set_condition(conditions, "Ready", True, "Reconciled", now=T0)
    assert [c.type for c in conditions] == ["Ready", "KeyReady"]
    assert not is_condition_true(remove_condition(conditions, "Ready"), "Ready")
    assert is_condition_true(conditions, "KeyReady")


def test_condition_rejects_what_metav1_rejects() -> None:
    with pytest.raises(ValidationError):
        set_condition([], "Ready", True, "not a reason!", now=T0)
    with pytest.raises(ValidationError):
        set_condition([], "Bad Type", True, "Reconciled", now=T0)


def test_status_round_trips_with_camel_case_and_rfc3339() -> None:
    status = DataSpaceNodeStatus(
        phase=NodePhase.READY,
        observed_generation=3,
        conditions=set_condition([], "Ready", True, "Reconciled", now=T0),
        active_key=ActiveKey(
            key_id="k2", fingerprint="a" * 64, not_before=T0.replace(microsecond=123456)
        ),
        previous_keys=[PreviousKey(key_id="k1", retire_at=T0 + timedelta(days=7))],
    )
    body = status.model_dump(mode="json", exclude_none=True)
    assert body["activeKey"]["notBefore"] == "2026-01-01T00:00:00Z"
    assert body["previousKeys"] == [{"keyId": "k1", "retireAt": "2026-01-08T00:00:00Z"}]
    assert body["conditions"][0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert DataSpaceNodeStatus.model_validate(body).active_key is not None


def test_status_caps_previous_keys() -> None:
    keys = [{"keyId": f"k{i}", "retireAt": "2026-01-01T00:00:00Z"} for i in range(9)]
    with pytest.raises(ValidationError, match="at most 8"):
        DataSpaceNodeStatus.model_validate({"previousKeys": keys})


NODE: dict[str, Any] = {
    "apiVersion": "trustspace.io/v1alpha1",
    "kind": "DataSpaceNode",
    "metadata": {"name": "vn-hanoi", "namespace": "ts", "generation": 4},
    "spec": {"role": "edge", "jurisdiction": "VN", "endpoint": "https://gw.example"},
}


def test_from_body_fills_defaults_and_exposes_snake_case() -> None:
    node = DataSpaceNode.from_body(NODE)
    assert (node.name, node.namespace, node.generation) == ("vn-hanoi", "ts", 4)
    assert parse_duration(node.spec.key_rotation.rotate_every) == timedelta(days=90)
    assert node.spec.placement.mode == "Local"
    body = node.to_body()
    assert body["spec"]["keyRotation"]["gracePeriod"] == "168h"
    assert "status" not in body
    assert DataSpaceNode.from_body(body) == node


def test_status_patch_carries_only_status() -> None:
    node = DataSpaceNode.from_body(NODE)
    assert node.status_patch() == {"status": {}}
    node.status = DataSpaceNodeStatus(phase=NodePhase.PROVISIONING, observed_generation=4)
    assert node.status_patch() == {
        "status": {
            "phase": "Provisioning",
            "observedGeneration": 4,
            "conditions": [],
            "previousKeys": [],
        }
    }


def test_parse_resource_dispatches_on_kind() -> None:
    assert isinstance(parse_resource(NODE), DataSpaceNode)
    with pytest.raises(ValueError, match=r"not a trustspace\.io kind"):
        parse_resource({**NODE, "kind": "Pod"})


def test_format_errors_reads_like_the_api_server() -> None:
    bad = {
        **NODE,
        "spec": {**NODE["spec"], "keyRotation": {"rotateEvery": "24h", "gracePeriod": "48h"}},
    }
    with pytest.raises(ValidationError) as info:
        DataSpaceNode.from_body(bad)
    assert format_errors(info.value) == [
        "spec.keyRotation.gracePeriod: gracePeriod must be shorter than rotateEvery, "
        "or retired keys would pile up"
    ]


def test_manual_rotation_ignores_rotation_period() -> None:
    spec = {
        **NODE["spec"],
        "keyRotation": {"policy": "Manual", "rotateEvery": "24h", "gracePeriod": "48h"},
    }
    DataSpaceNode.from_body({**NODE, "spec": spec})


def test_effective_channel_follows_action() -> None:
    def rule(action: str, channel: str | None = None) -> TransferRule:
        extra = {"approval": {"approvers": [{"name": "a", "kind": "Regulator"}]}}
        return TransferRule.model_validate(
            {
                "name": "r",
                "classifications": ["internal"],
                "action": action,
                **({"channel": channel} if channel else {}),
                **(extra if action == "review" else {}),
            }
        )

    assert rule("allow").effective_channel == Channel.AUTO
    assert rule("allow", "review").effective_channel == Channel.REVIEW
    assert rule("review").effective_channel == Channel.REVIEW
    assert rule("deny").effective_channel is None
    assert rule("deny").action == Action.DENY


def test_kinds_are_distinct_models() -> None:
    assert {DataSpaceNode.crd.kind, TransferPolicy.crd.kind, MirrorLink.crd.kind} == {
        "DataSpaceNode",
        "TransferPolicy",
        "MirrorLink",
    }
