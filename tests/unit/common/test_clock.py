"""The shared clock and its RFC 3339 forms."""

from __future__ import annotations

import datetime as dt

import pytest

from trustspace import clock

pytestmark = pytest.mark.unit

T = dt.datetime(2026, 5, 1, 10, 0, 7, 250000, tzinfo=dt.UTC)


def test_now_is_aware_utc() -> None:
    assert clock.now().utcoffset() == dt.timedelta(0)


def test_text_forms() -> None:
    assert clock.rfc3339(T) == "2026-05-01T10:00:07Z"
    assert clock.rfc3339_micro(T) == "2026-05-01T10:00:07.250000Z"
    assert clock.from_epoch(T.timestamp()) == "2026-05-01T10:00:07Z"
    # A naive time from our own code means UTC; an offset is converted.
    assert clock.rfc3339(T.replace(tzinfo=None)) == "2026-05-01T10:00:07Z"
    plus_two = T.astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert clock.rfc3339(plus_two) == "2026-05-01T10:00:07Z"


def test_parse_round_trips() -> None:
    assert clock.parse(clock.rfc3339_micro(T)) == T
    assert clock.parse("2026-05-01T12:00:07.25+02:00") == T
