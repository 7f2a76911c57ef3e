"""The desensitisation tool (B6) on JSON records."""

from __future__ import annotations

import pytest

from trustspace.crypto import hmac_sm3
from trustspace.policy.decision import FieldProtection
from trustspace.policy.desensitise import (
    PSEUDONYM_PREFIX,
    derive_link_key,
    desensitise,
    generalise,
    mask,
    pseudonymise,
)

pytestmark = pytest.mark.unit

SECRET = b"k" * 32


def fp(field: str, method: str, **options: object) -> FieldProtection:
    return FieldProtection(field, method, tuple(sorted(options.items())))


def test_mask_keeps_the_ends() -> None:
    assert mask("13812345678", 3, 4) == "138****5678"
    assert mask("abc", 2, 2) == "***"  # too short to show both ends
    assert mask(12345, 0, 2, "#") == "###45"


def test_pseudonymise_is_stable_per_key_and_differs_across_links() -> None:
    k1, k2 = derive_link_key(SECRET, "vn-hanoi-to-cn-nanning"), derive_link_key(SECRET, "x")
    token = pseudonymise("ID-1", k1)
    assert token == pseudonymise("ID-1", k1)
    assert token.startswith(PSEUDONYM_PREFIX) and len(token) == len(PSEUDONYM_PREFIX) + 64
    assert token == PSEUDONYM_PREFIX + hmac_sm3(k1, b'"ID-1"').hex()
    assert token != pseudonymise("ID-1", k2)
    assert pseudonymise(1, k1) != pseudonymise("1", k1)


@pytest.mark.parametrize(
    ("value", "level", "expected"),
    [
        (37, 1, "30-39"),
        (1234, 2, "1200-1299"),
        (-5, 1, "-10--1"),
        ("2024-05-17", 1, "2024-05"),
        ("2024-05-17T10:00:00Z", 2, "2024"),
        ({"lat": 22.81734, "lon": 108.36612}, 1, {"lat": 22.82, "lon": 108.37}),
        ([22.81734, 108.36612], 3, [23.0, 108.0]),
        ([22.81734, 108.36612], 4, [20, 110]),
        ("530021", 1, "5300**"),
        (True, 3, True),
        (None, 1, None),
    ],
)
def test_generalise(value: object, level: int, expected: object) -> None:
    assert generalise(value, level) == expected


def test_records_are_desensitised_by_path_and_not_mutated() -> None:
    record = {
        "patient": {
            "name": "Nguyen Van A",
            "idNumber": "0790",
            "birthDate": "1980-02-03",
            "address": "Hanoi",
        },
        "items": [{"owner": "a", "qty": 3}, {"owner": "b", "qty": 15}, {"qty": 1}],
        "tags": ["x", "y"],
    }
    original = repr(record)
    out = desensitise(
        record,
        [
            fp("patient.name", "mask", keepFirst=1, keepLast=0),
            fp("patient.idNumber", "pseudonymise"),
            fp("patient.birthDate", "generalise", level=2),
            fp("patient.address", "drop"),
            fp("items[*].owner", "mask", keepLast=0),
            fp("items[*].qty", "generalise", level=1),
            fp("tags[*]", "drop"),
            fp("missing.field", "drop"),
        ],
        key_for=lambda _: b"key",
    )
    assert repr(record) == original
    assert out["patient"] == {
        "name": "N" + "*" * 11,
        "idNumber": pseudonymise("0790", b"key"),
        "birthDate": "1980",
    }
    assert out["items"] == [
        {"owner": "*", "qty": "0-9"},
        {"owner": "*", "qty": "10-19"},
        {"qty": "0-9"},
    ]
    assert out["tags"] == []


def test_drop_runs_after_child_protections() -> None:
    out = desensitise({"a": {"b": "secret"}}, [fp("a", "drop"), fp("a.b", "mask")])
    assert out == {}


def test_pseudonymise_without_a_key_refuses() -> None:
    with pytest.raises(ValueError, match="no key"):
        desensitise({"a": "x"}, [fp("a", "pseudonymise")])
    with pytest.raises(ValueError, match="bad field path"):
        desensitise({"a": "x"}, [fp("a..b", "drop")])
