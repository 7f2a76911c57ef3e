"""The strict DER reader and writer behind SM2 keys and signatures."""

from __future__ import annotations

import pytest

from trustspace.crypto import der
from trustspace.crypto.der import DerError, DerReader

pytestmark = pytest.mark.unit


def test_oid_encodings_match_x690() -> None:
    assert der.oid("1.2.840.10045.2.1").hex() == "06072a8648ce3d0201"
    assert der.oid("1.2.156.10197.1.301").hex() == "06082a811ccf5501822d"


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "020100"),
        (1, "020101"),
        (127, "02017f"),
        (128, "02020080"),
        (256, "02020100"),
        (2**255, "022100" + "80" + "00" * 31),
    ],
)
def test_integer_round_trip(value: int, encoded: str) -> None:
    assert der.integer(value).hex() == encoded
    assert DerReader(bytes.fromhex(encoded)).read_unsigned() == value


def test_long_lengths_round_trip() -> None:
    for size in (127, 128, 255, 256, 1000):
        blob = der.octet_string(b"x" * size)
        reader = DerReader(blob)
        assert reader.read(der.TAG_OCTET_STRING) == b"x" * size
        reader.expect_end()


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        ("0200", "empty INTEGER"),
        ("02020001", "non-minimal INTEGER"),
        ("0202ff80", "non-minimal INTEGER"),
        ("020180", "negative INTEGER"),
        ("0281010101", "non-minimal DER length"),  # long form for a short length
        ("028200050101010101", "non-minimal DER length"),
        ("0280010100", "indefinite length"),
        ("020201", "truncated"),
        ("02", "truncated"),
        ("0401ff", "expected DER tag"),
    ],
)
def test_reader_rejects_non_der(blob: str, reason: str) -> None:
    with pytest.raises(DerError, match=reason):
        DerReader(bytes.fromhex(blob)).read_unsigned()


def test_reader_rejects_trailing_bytes() -> None:
    reader = DerReader(der.integer(5) + b"\x00")
    assert reader.read_unsigned() == 5
    with pytest.raises(DerError, match="trailing"):
        reader.expect_end()


def test_bit_string_must_have_no_unused_bits() -> None:
    assert DerReader(der.bit_string(b"\x04ab")).read_bit_string() == b"\x04ab"
    with pytest.raises(DerError, match="unused bits"):
        DerReader(bytes.fromhex("030201ff")).read_bit_string()
    with pytest.raises(DerError, match="unused bits"):
        DerReader(bytes.fromhex("0300")).read_bit_string()


def test_oid_check_is_exact() -> None:
    sm2 = der.oid("1.2.156.10197.1.301")
    DerReader(sm2).read_oid(sm2, "curve")
    with pytest.raises(DerError, match="unexpected curve OID"):
        DerReader(der.oid("1.2.840.10045.3.1.7")).read_oid(sm2, "curve")
