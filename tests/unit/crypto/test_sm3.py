"""SM3 and HMAC-SM3 against GB/T 32905-2016 and the OpenSSL CLI."""

from __future__ import annotations

import io
import pickle

import pytest
from crypto_support import OpenSSL

from trustspace.crypto import HMACSM3, SM3, hmac_sm3, sm3, sm3_file, verify_hmac_sm3

pytestmark = pytest.mark.unit

# GB/T 32905-2016, Appendix A: example 1 ("abc") and example 2 ("abcd" x 16).
VECTORS = [
    (b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
    (b"abcd" * 16, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
]


@pytest.mark.parametrize(("message", "expected"), VECTORS, ids=["abc", "abcd*16"])
def test_standard_vectors_one_shot(message: bytes, expected: str) -> None:
    assert sm3(message).hex() == expected


@pytest.mark.parametrize(("message", "expected"), VECTORS, ids=["abc", "abcd*16"])
def test_standard_vectors_incremental_at_every_split(message: bytes, expected: str) -> None:
    for cut in range(len(message) + 1):
        h = SM3(message[:cut])
        h.update(message[cut:])
        assert h.hexdigest() == expected, cut


def test_digest_can_be_read_twice_and_updated_after() -> None:
    h = SM3(b"ab")
    first = h.digest()
    assert h.digest() == first == sm3(b"ab")
    h.update(b"c")
    assert h.hexdigest() == VECTORS[0][1]


def test_copy_is_independent() -> None:
    h = SM3(b"ab")
    clone = h.copy()
    clone.update(b"c")
    h.update(b"x")
    assert clone.digest() == sm3(b"abc")
    assert h.digest() == sm3(b"abx")


def test_file_digest_spans_chunks() -> None:
    data = bytes(range(256)) * 1000  # bigger than the 64 KiB read size
    assert sm3_file(io.BytesIO(data)) == sm3(data)
    assert sm3_file(io.BytesIO(b"")) == sm3(b"")


def test_digest_matches_openssl_cli(openssl: OpenSSL) -> None:
    data = bytes(range(256)) * 70 + b"tail"
    (openssl.workdir / "data.bin").write_bytes(data)
    out = openssl.run("dgst", "-sm3", "-r", "data.bin").stdout.decode()
    assert out.split()[0] == sm3(data).hex()


def _reference_hmac(key: bytes, message: bytes) -> bytes:
    """RFC 2104 spelled out over our SM3 (block size 64)."""
    if len(key) > 64:
        key = sm3(key)
    key = key.ljust(64, b"\x00")
    inner = sm3(bytes(b ^ 0x36 for b in key) + message)
    return sm3(bytes(b ^ 0x5C for b in key) + inner)


@pytest.mark.parametrize("key_len", [0, 1, 32, 64, 65, 200])
def test_hmac_matches_rfc2104_construction(key_len: int) -> None:
    key = bytes((7 * i + 3) % 256 for i in range(key_len))
    message = b"cross-border payload"
    assert hmac_sm3(key, message) == _reference_hmac(key, message)


def test_hmac_matches_openssl_cli(openssl: OpenSSL) -> None:
    key = bytes(range(20))
    (openssl.workdir / "msg").write_bytes(b"what do ya want for nothing?")
    out = openssl.run(
        "mac", "-digest", "SM3", "-macopt", f"hexkey:{key.hex()}", "-in", "msg", "HMAC"
    ).stdout
    assert out.decode().strip().lower() == hmac_sm3(key, b"what do ya want for nothing?").hex()


def test_hmac_incremental_and_verification() -> None:
    key = b"k" * 32
    h = HMACSM3(key, b"part one, ")
    h.update(b"part two")
    tag = hmac_sm3(key, b"part one, part two")
    assert h.digest() == tag
    assert h.verify(tag)
    assert verify_hmac_sm3(key, b"part one, part two", tag)
    assert not verify_hmac_sm3(key, b"part one, part three", tag)
    assert not verify_hmac_sm3(b"K" * 32, b"part one, part two", tag)
    assert not h.verify(tag[:-1])
    assert not h.verify(bytes([tag[0] ^ 1]) + tag[1:])


def test_hmac_object_hides_its_key() -> None:
    key = b"super-secret-hmac-key"
    h = HMACSM3(key)
    assert key.decode() not in repr(h)
    with pytest.raises(TypeError):
        pickle.dumps(h)
