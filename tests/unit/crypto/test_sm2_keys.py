"""SM2 key objects: strict loading, validation, and keeping the private scalar private."""

from __future__ import annotations

import copy
import logging
import pickle

import pytest

from trustspace.crypto import (
    CryptoError,
    InvalidKey,
    InvalidSignature,
    SM2PrivateKey,
    SM2PublicKey,
    get_backend,
)
from trustspace.crypto import der as asn1
from trustspace.crypto.sm2 import curve, encoding

pytestmark = pytest.mark.unit

D = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
D_HEX = f"{D:064x}"
OPENSSL = "openssl"


@pytest.fixture
def key() -> SM2PrivateKey:
    return SM2PrivateKey(D, backend=get_backend("gmssl"))


def test_private_scalar_range() -> None:
    for bad in (0, curve.N - 1, curve.N, curve.N + 5, -1):
        with pytest.raises(InvalidKey, match=r"\[1, n-2\]"):
            SM2PrivateKey(bad)
    assert SM2PrivateKey(1).public_key().point == (curve.GX, curve.GY)
    SM2PrivateKey(curve.N - 2)
    with pytest.raises(InvalidKey):
        SM2PrivateKey.from_bytes(b"\x01" * 31)


def test_der_and_pem_round_trips(key: SM2PrivateKey) -> None:
    assert SM2PrivateKey.from_der(key.to_der()) == key
    assert SM2PrivateKey.from_pem(key.to_pem()) == key
    assert SM2PrivateKey.from_pem(key.to_pem().decode()) == key
    assert SM2PrivateKey.from_bytes(key.to_bytes()) == key
    public = key.public_key()
    assert SM2PublicKey.from_der(public.to_der()) == public
    assert SM2PublicKey.from_pem(public.to_pem()) == public
    assert SM2PublicKey.from_bytes(public.to_bytes()) == public
    assert key.to_pem().startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert public.to_pem().startswith(b"-----BEGIN PUBLIC KEY-----\n")


def test_pkcs8_layout_is_openssls(key: SM2PrivateKey) -> None:
    body = key.to_der()
    # SEQ { INTEGER 0, SEQ { id-ecPublicKey, sm2 }, OCTET STRING { ECPrivateKey } }
    assert body[:27] == bytes.fromhex("308187020100301306072a8648ce3d020106082a811ccf5501822d")
    assert body[27:32] == bytes.fromhex("046d306b02")
    spki = key.public_key().to_der()
    assert spki[:27] == bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d03420004")


def test_embedded_public_key_must_match(key: SM2PrivateKey) -> None:
    wrong = SM2PrivateKey(D + 1).public_key().point
    tampered = encoding.encode_pkcs8(D, wrong)
    with pytest.raises(InvalidKey, match="does not match"):
        SM2PrivateKey.from_der(tampered)
    # Without an embedded public key the key is still complete.
    assert SM2PrivateKey.from_der(encoding.encode_pkcs8(D, None)) == key


def _pkcs8(algorithm: bytes, inner: bytes, version: int = 0, extra: bytes = b"") -> bytes:
    return asn1.sequence(asn1.integer(version), algorithm, asn1.octet_string(inner), extra)


def test_wrong_oids_and_structure_are_rejected() -> None:
    ec = asn1.oid("1.2.840.10045.2.1")
    sm2 = asn1.oid("1.2.156.10197.1.301")
    p256 = asn1.oid("1.2.840.10045.3.1.7")
    inner = asn1.sequence(asn1.integer(1), asn1.octet_string(D.to_bytes(32, "big")))
    good = _pkcs8(asn1.sequence(ec, sm2), inner)
    assert SM2PrivateKey.from_der(good).to_bytes() == D.to_bytes(32, "big")
    cases = {
        "curve OID": _pkcs8(asn1.sequence(ec, p256), inner),
        "key algorithm OID": _pkcs8(asn1.sequence(sm2, sm2), inner),
        "version": _pkcs8(asn1.sequence(ec, sm2), inner, version=2),
        "attributes": _pkcs8(asn1.sequence(ec, sm2), inner, extra=asn1.tlv(0xA0, b"")),
        "trailing": good + b"\x00",
        "32 bytes": _pkcs8(
            asn1.sequence(ec, sm2),
            asn1.sequence(asn1.integer(1), asn1.octet_string(D.to_bytes(33, "big"))),
        ),
    }
    for reason, blob in cases.items():
        with pytest.raises(InvalidKey, match=reason):
            SM2PrivateKey.from_der(blob)
    sec1_wrong_curve = asn1.sequence(
        asn1.integer(1), asn1.octet_string(D.to_bytes(32, "big")), asn1.tlv(0xA0, p256)
    )
    with pytest.raises(InvalidKey, match="curve OID"):
        SM2PrivateKey.from_der(sec1_wrong_curve)
    sec1_no_curve = asn1.sequence(asn1.integer(1), asn1.octet_string(D.to_bytes(32, "big")))
    with pytest.raises(InvalidKey, match="names no curve"):
        SM2PrivateKey.from_der(sec1_no_curve)


def test_public_point_validation(key: SM2PrivateKey) -> None:
    x, y = key.public_key().point
    with pytest.raises(InvalidKey, match="out of range"):
        SM2PublicKey(x + curve.P, y)
    with pytest.raises(InvalidKey, match="out of range"):
        SM2PublicKey(x, y + curve.P)  # same point mod p, but not a canonical coordinate
    with pytest.raises(InvalidKey, match="infinity"):
        SM2PublicKey.from_bytes(b"\x00")
    with pytest.raises(InvalidKey, match="not an SEC1"):
        SM2PublicKey.from_bytes(b"\x04" + bytes(63))
    with pytest.raises(InvalidKey, match="not on the SM2 curve"):
        SM2PublicKey.from_bytes(b"\x04" + bytes(64))
    with pytest.raises(InvalidKey, match="not an SEC1"):
        SM2PublicKey.from_bytes(b"\x06" + key.public_key().to_bytes()[1:])  # hybrid form
    compressed = bytes([2 + (y & 1)]) + x.to_bytes(32, "big")
    assert SM2PublicKey.from_bytes(compressed) == key.public_key()
    flipped = bytes([3 - (y & 1)]) + x.to_bytes(32, "big")
    assert SM2PublicKey.from_bytes(flipped).point == (x, curve.P - y)


def test_pem_parsing_rules(key: SM2PrivateKey) -> None:
    pem = key.to_pem()
    assert SM2PrivateKey.from_pem(b"leading text\n" + pem + b"trailing\n") == key
    with pytest.raises(InvalidKey, match="more than one"):
        SM2PrivateKey.from_pem(pem + SM2PrivateKey(D + 1).to_pem())
    with pytest.raises(InvalidKey, match="no PRIVATE KEY"):
        SM2PrivateKey.from_pem(key.public_key().to_pem())
    with pytest.raises(InvalidKey, match="no PUBLIC KEY"):
        SM2PublicKey.from_pem(pem)
    with pytest.raises(InvalidKey, match="base64"):
        SM2PrivateKey.from_pem(pem.replace(b"M", b"*", 1))
    encrypted = (
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n"
    )
    with pytest.raises(InvalidKey, match="encrypted"):
        SM2PrivateKey.from_pem(encrypted)
    legacy = pem.replace(b"KEY-----\n", b"KEY-----\nProc-Type: 4,ENCRYPTED\n", 1)
    with pytest.raises(InvalidKey, match="encrypted"):
        SM2PrivateKey.from_pem(legacy)
    mismatched = pem.replace(b"END PRIVATE KEY", b"END PUBLIC KEY")
    with pytest.raises(InvalidKey, match="labels differ"):
        SM2PrivateKey.from_pem(mismatched)


def test_signature_encoding_is_strict() -> None:
    good = encoding.encode_signature(5, 7)
    assert encoding.decode_signature(good)[:2] == (5, 7)
    padded = asn1.sequence(asn1.tlv(asn1.TAG_INTEGER, b"\x00\x05"), asn1.integer(7))
    for blob, reason in [
        (padded, "non-minimal"),
        (good + b"\x00", "trailing"),
        (good[:-1], "truncated"),
        (encoding.encode_signature(0, 7), "outside"),
        (encoding.encode_signature(5, curve.N), "outside"),
        (asn1.sequence(asn1.integer(5)), "truncated"),
        (asn1.sequence(asn1.integer(5), asn1.integer(7), asn1.integer(9)), "trailing"),
        (b"", "truncated"),
    ]:
        with pytest.raises(InvalidSignature, match=reason):
            encoding.decode_signature(blob)


def test_private_scalar_never_shows(key: SM2PrivateKey, caplog: pytest.LogCaptureFixture) -> None:
    for text in (repr(key), str(key), f"{key}", f"{key!r}"):
        assert D_HEX not in text.lower()
        assert str(D) not in text
        assert key.key_id[:16] in text
    logging.getLogger("test").warning("loaded %s / %r", key, key)
    assert D_HEX not in caplog.text.lower()
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(key)
    with pytest.raises(TypeError):
        key.__getstate__()
    assert copy.copy(key) is key
    assert copy.deepcopy(key) is key
    assert not hasattr(key, "__dict__")


def test_errors_do_not_echo_key_material(key: SM2PrivateKey) -> None:
    mismatched = encoding.encode_pkcs8(D, SM2PrivateKey(D + 1).public_key().point)
    bad_inputs = [
        mismatched,
        mismatched + b"\x00",
        encoding.encode_pkcs8(D, None)[:-3],
    ]
    for blob in bad_inputs:
        with pytest.raises(CryptoError) as info:
            SM2PrivateKey.from_der(blob)
        message = str(info.value)
        assert "\n" not in message
        assert D_HEX not in message.lower() and D_HEX[:16] not in message.lower()
        assert info.value.__cause__ is None


def test_public_keys_pickle_hash_and_compare(key: SM2PrivateKey) -> None:
    public = key.public_key()
    clone = pickle.loads(pickle.dumps(public))  # noqa: S301 - our own bytes
    assert clone == public and hash(clone) == hash(public)
    assert clone != SM2PrivateKey(D + 1).public_key()
    assert {public, clone} == {public}
    assert key.key_id == public.key_id
    assert len(public.key_id) == 64
    assert D_HEX not in repr(public).lower()


def test_signer_id_is_bound_into_the_signature(key: SM2PrivateKey) -> None:
    signature = key.sign(b"data", distid=b"node-7@asean-edge")
    public = key.public_key()
    public.verify(b"data", signature, distid=b"node-7@asean-edge")
    assert not public.is_valid_signature(b"data", signature)
    with pytest.raises(CryptoError, match="8190"):
        key.sign(b"data", distid=b"x" * 8191)
    long_id = b"x" * 8190
    public.verify(b"data", key.sign(b"data", distid=long_id), distid=long_id)
