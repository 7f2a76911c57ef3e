"""Property tests: SM2 across backend pairs, SM4-GCM envelopes, key encodings."""

from __future__ import annotations

import pytest
from crypto_support import load_backend_or_skip
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trustspace.crypto import (
    DecryptionError,
    SM2PrivateKey,
    SM2PublicKey,
    get_backend,
    seal,
    unseal,
)
from trustspace.crypto.sm2 import PREFERENCE, curve, encoding

pytestmark = pytest.mark.unit

# The pure-Python backend takes ~10-20 ms per operation: keep its example counts small.
FAST = settings(max_examples=60, deadline=None)
BOUNDED = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

messages = st.binary(max_size=512)
distids = st.one_of(st.just(b"1234567812345678"), st.binary(max_size=64))
scalars = st.integers(min_value=1, max_value=curve.N - 2)

PAIRS = [(a, b) for a in PREFERENCE for b in PREFERENCE]


@pytest.mark.parametrize(("signer", "verifier"), PAIRS)
def test_sign_with_one_backend_verify_with_another(signer: str, verifier: str) -> None:
    sign_with = load_backend_or_skip(signer)
    verify_with = load_backend_or_skip(verifier)
    key = SM2PrivateKey.generate(backend=get_backend("gmssl"))
    public = key.public_key()

    @BOUNDED
    @given(message=messages, distid=distids, flip=st.integers(min_value=0, max_value=7))
    def check(message: bytes, distid: bytes, flip: int) -> None:
        signature = key.sign(message, distid=distid, backend=sign_with)
        public.verify(message, signature, distid=distid, backend=verify_with)
        altered = message + b"\x00" if not message else bytes([message[0] ^ (1 << flip)])
        altered += message[1:]
        assert not public.is_valid_signature(altered, signature, distid=distid, backend=verify_with)

    check()


@FAST
@given(
    key=st.binary(min_size=16, max_size=16),
    plaintext=st.binary(max_size=2048),
    aad=st.binary(max_size=64),
    position=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
)
def test_sm4_gcm_envelope_round_trip_and_tamper(
    key: bytes, plaintext: bytes, aad: bytes, position: int, bit: int
) -> None:
    envelope = seal(key, plaintext, aad)
    assert unseal(key, envelope, aad) == plaintext
    tampered = bytearray(envelope)
    tampered[position % len(envelope)] ^= 1 << bit
    with pytest.raises(DecryptionError):
        unseal(key, bytes(tampered), aad)
    with pytest.raises(DecryptionError):
        unseal(key, envelope, aad + b"\x00")


@FAST
@given(d=scalars)
def test_key_encodings_round_trip(d: int) -> None:
    key = SM2PrivateKey(d, backend=load_backend_or_skip(PREFERENCE[0]))
    assert SM2PrivateKey.from_pem(key.to_pem()) == key
    assert SM2PrivateKey.from_der(key.to_der()).to_bytes() == d.to_bytes(32, "big")
    public = key.public_key()
    assert SM2PublicKey.from_pem(public.to_pem()) == public
    assert SM2PublicKey.from_der(public.to_der()).to_der() == public.to_der()
    x, y = public.point
    compressed = bytes([2 + (y & 1)]) + x.to_bytes(32, "big")
    assert SM2PublicKey.from_bytes(compressed) == public


@FAST
@given(
    r=st.integers(min_value=1, max_value=curve.N - 1),
    s=st.integers(min_value=1, max_value=curve.N - 1),
)
def test_signature_der_round_trip(r: int, s: int) -> None:
    blob = encoding.encode_signature(r, s)
    decoded = encoding.decode_signature(blob)
    assert (decoded.r, decoded.s, decoded.der) == (r, s, blob)
    assert len(blob) <= 72
