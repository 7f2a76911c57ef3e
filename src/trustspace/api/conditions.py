"""Status conditions, shaped and validated exactly like metav1.Condition.

`kubectl wait --for=condition=Ready`, dashboards and other controllers all read conditions
through that contract, so the schema repeats its patterns and bounds verbatim.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from trustspace import clock
from trustspace.api.common import REASON_PATTERN, Timestamp
from trustspace.api.constants import ConditionStatus
from trustspace.api.rules import ListType, StatusModel

CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
#: Kubernetes objects carry a handful of conditions; the cap keeps status from growing.
MAX_CONDITIONS = 16
#: The longest condition message we write; longer ones are cut. Kubernetes allows 32768
#: (the schema below), but a message is read by people in `kubectl describe` and rewritten
#: on every status apply, and up to MAX_CONDITIONS of them share one object: 4096 keeps the
#: first several problems of a policy compile or a rejected batch and the status small.
MAX_MESSAGE = 4096


class Condition(StatusModel):
    """One aspect of the object's current state (metav1.Condition)."""

    type: Annotated[str, StringConstraints(max_length=316, pattern=CONDITION_TYPE_PATTERN)]
    """Type of condition in CamelCase, e.g. `Ready`; unique within the list."""
    status: ConditionStatus
    """Whether the condition holds: `True`, `False` or `Unknown`."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The `metadata.generation` the condition was computed from; older than the object's
    generation means the condition is out of date."""
    last_transition_time: Timestamp
    """When `status` last changed (not when the condition was last checked)."""
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=REASON_PATTERN)]
    """Machine-readable CamelCase cause of the last transition, e.g. `KeyRotated`."""
    message: Annotated[str, StringConstraints(max_length=32768)]
    """Human-readable details of the last transition; may be empty."""


Conditions = Annotated[
    list[Condition], ListType("map", ("type",)), Field(max_length=MAX_CONDITIONS)
]


def find_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def is_condition_true(conditions: Sequence[Condition], type_: str) -> bool:
    found = find_condition(conditions, type_)
    return found is not None and found.status == ConditionStatus.TRUE


def _as_status(status: ConditionStatus | bool | str) -> ConditionStatus:
    if isinstance(status, bool):
        return ConditionStatus.TRUE if status else ConditionStatus.FALSE
    return ConditionStatus(status)


def condition_dict(
    conditions: Iterable[Mapping[str, Any]] | None,
    type_: str,
    status: ConditionStatus | bool | str,
    reason: StrEnum | str,
    message: str = "",
    *,
    observed_generation: int | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The condition `type_` as a status dict (the JSON form), given the object's current
    `conditions` (dicts as read from the API server): the dict-level :func:`set_condition`,
    for controllers that apply their own conditions without the models.

    `lastTransitionTime` is kept from the current condition unless `status` changes; the
    message is cut to :data:`MAX_MESSAGE`.
    """
    status = _as_status(status)
    previous = next((c for c in conditions or () if c.get("type") == type_), None)
    if (
        previous is None
        or previous.get("status") != status
        or not previous.get("lastTransitionTime")
    ):
        transition = clock.rfc3339(now)
    else:
        transition = str(previous["lastTransitionTime"])
    entry: dict[str, Any] = {
        "type": type_,
        "status": str(status),
        "reason": str(reason),
        "message": message[:MAX_MESSAGE],
        "lastTransitionTime": transition,
    }
    if observed_generation is not None:
        entry["observedGeneration"] = observed_generation
    return entry


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: ConditionStatus | bool,
    reason: StrEnum | str,
    message: str = "",
    *,
    observed_generation: int | None = None,
    now: datetime | None = None,
) -> list[Condition]:
    """Return `conditions` with `type_` set, like apimachinery's meta.SetStatusCondition.

    `lastTransitionTime` moves only when `status` changes, so it tells how long a state
    has held; reason, message and observedGeneration always take the new values.
    """
    status = _as_status(status)
    previous = find_condition(conditions, type_)
    if previous is None or previous.status != status:
        transition = now or clock.now()
    else:
        transition = previous.last_transition_time
    updated = Condition(
        type=type_,
        status=status,
        reason=str(reason),
        message=message[:MAX_MESSAGE],
        observed_generation=observed_generation,
        last_transition_time=transition,
    )
    if previous is None:
        return [*conditions, updated]
    return [updated if c.type == type_ else c for c in conditions]


def remove_condition(conditions: Sequence[Condition], type_: str) -> list[Condition]:
    return [c for c in conditions if c.type != type_]
