"""The one wall clock of the data space, and its text forms.

Kubernetes status (conditions, ``metav1.Time``) carries RFC 3339 in UTC at second precision;
the audit log carries microseconds so that its times sort as text. Every side reads and
writes times through here, so a status written by the operator, the collector and an agent
compares equal, and tests that freeze time have one place to do it.
"""

from __future__ import annotations

import datetime as dt


def now() -> dt.datetime:
    """The current time, timezone-aware in UTC (never naive: naive times compare wrongly)."""
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    # Kubernetes times are UTC; a naive datetime from our own code means UTC too.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def rfc3339(value: dt.datetime | None = None) -> str:
    """``value`` (default: now) as RFC 3339 in UTC with second precision, like metav1.Time."""
    return _aware(value or now()).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(value: dt.datetime | None = None) -> str:
    """``value`` (default: now) as RFC 3339 in UTC with microseconds: sortable as text."""
    return _aware(value or now()).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_epoch(seconds: float) -> str:
    """A ``time.time()`` value as :func:`rfc3339`."""
    return rfc3339(dt.datetime.fromtimestamp(seconds, dt.UTC))


def parse(value: str) -> dt.datetime:
    """An RFC 3339 time (``Z`` or an offset) as an aware datetime."""
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
