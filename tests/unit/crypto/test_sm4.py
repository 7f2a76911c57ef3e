"""SM4 against GB/T 32907-2016, RFC 8998 and the OpenSSL CLI; the SM4-GCM envelope."""

from __future__ import annotations

import pickle
import time

import pytest
from crypto_support import OpenSSL
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from trustspace.crypto import (
    SM4GCM,
    DecryptionError,
    InvalidKey,
    ctr_decrypt,
    ctr_encrypt,
    generate_key,
    seal,
    unseal,
)
from trustspace.crypto.sm4 import ENVELOPE_OVERHEAD, ENVELOPE_VERSION, NONCE_SIZE, TAG_SIZE

pytestmark = pytest.mark.unit

# GB/T 32907-2016, Appendix A: key = plaintext = 0123456789abcdeffedcba9876543210.
STD_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")
STD_ONCE = bytes.fromhex("681edf34d206965e86b3e94f536e4246")  # example 1
STD_MILLION = bytes.fromhex("595298c7c6fd271f0402f804c33d3f66")  # example 2


def _ecb(key: bytes) -> Cipher[modes.ECB]:
    # ECB only to replay the standard's single-block examples.
    return Cipher(algorithms.SM4(key), modes.ECB())  # noqa: S305


def test_standard_example_1_single_block() -> None:
    enc = _ecb(STD_KEY).encryptor()
    assert enc.update(STD_KEY) + enc.finalize() == STD_ONCE
    dec = _ecb(STD_KEY).decryptor()
    assert dec.update(STD_ONCE) + dec.finalize() == STD_KEY


@pytest.mark.slow
def test_standard_example_2_one_million_encryptions(capsys: pytest.CaptureFixture[str]) -> None:
    # Each round feeds on the previous output, so this cannot be batched: one ECB
    # encryptor, one update per block (about 0.4 s here).
    enc = _ecb(STD_KEY).encryptor()
    block = STD_KEY
    started = time.perf_counter()
    for _ in range(1_000_000):
        block = enc.update(block)
    elapsed = time.perf_counter() - started
    assert block == STD_MILLION
    with capsys.disabled():
        print(f"\n[SM4 1,000,000 iterations: {elapsed:.2f} s]")


# RFC 8998, Appendix A.1: SM4-GCM test vector.
RFC8998_IV = bytes.fromhex("00001234567800000000ABCD")
RFC8998_AAD = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
RFC8998_PT = bytes.fromhex(
    "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
    "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
)
RFC8998_CT = bytes.fromhex(
    "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
    "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
)
RFC8998_TAG = bytes.fromhex("83DE3541E4C2B58177E065A9BF7B62EC")


def test_gcm_rfc8998_vector() -> None:
    gcm = SM4GCM(STD_KEY)
    assert gcm.encrypt(RFC8998_IV, RFC8998_PT, RFC8998_AAD) == RFC8998_CT + RFC8998_TAG
    assert gcm.decrypt(RFC8998_IV, RFC8998_CT + RFC8998_TAG, RFC8998_AAD) == RFC8998_PT


def test_gcm_rejects_tampering_of_each_part() -> None:
    gcm = SM4GCM(STD_KEY)
    sealed = RFC8998_CT + RFC8998_TAG
    for index in (0, len(RFC8998_CT) - 1, len(sealed) - 1):
        bad = bytearray(sealed)
        bad[index] ^= 0x01
        with pytest.raises(DecryptionError):
            gcm.decrypt(RFC8998_IV, bytes(bad), RFC8998_AAD)
    with pytest.raises(DecryptionError):
        gcm.decrypt(RFC8998_IV, sealed, RFC8998_AAD + b"!")
    with pytest.raises(DecryptionError):
        gcm.decrypt(bytes(12), sealed, RFC8998_AAD)
    with pytest.raises(DecryptionError):
        gcm.decrypt(RFC8998_IV, sealed[: TAG_SIZE - 1], RFC8998_AAD)


def test_ctr_matches_openssl_cli(openssl: OpenSSL) -> None:
    key = bytes(range(16))
    counter = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")  # wraps within the message
    data = bytes((i * 31) % 256 for i in range(1000))
    (openssl.workdir / "plain").write_bytes(data)
    openssl.run(
        "enc", "-sm4-ctr", "-K", key.hex(), "-iv", counter.hex(), "-in", "plain", "-out", "ct"
    )
    expected = (openssl.workdir / "ct").read_bytes()
    assert ctr_encrypt(key, counter, data) == expected
    assert ctr_decrypt(key, counter, expected) == data


def test_ctr_rejects_bad_sizes() -> None:
    with pytest.raises(InvalidKey):
        ctr_encrypt(b"short", bytes(16), b"x")
    with pytest.raises(ValueError, match="16 bytes"):
        ctr_encrypt(bytes(16), bytes(12), b"x")


def test_envelope_layout_and_round_trip() -> None:
    key = generate_key()
    envelope = seal(key, b"payload", b"tenant=gx-hub")
    assert envelope[0] == ENVELOPE_VERSION
    assert len(envelope) == len(b"payload") + ENVELOPE_OVERHEAD
    assert unseal(key, envelope, b"tenant=gx-hub") == b"payload"
    # Fresh random nonce every time, so equal plaintexts give unrelated envelopes.
    again = seal(key, b"payload", b"tenant=gx-hub")
    assert again[1 : 1 + NONCE_SIZE] != envelope[1 : 1 + NONCE_SIZE]
    assert unseal(key, seal(key, b""), b"") == b""


def test_envelope_body_is_plain_sm4_gcm() -> None:
    key = generate_key()
    envelope = seal(key, b"interop", b"ad")
    nonce, body = envelope[1 : 1 + NONCE_SIZE], envelope[1 + NONCE_SIZE :]
    header = envelope[:1]
    assert SM4GCM(key).decrypt(nonce, body, header + b"ad") == b"interop"


def test_envelope_rejects_every_alteration() -> None:
    key = generate_key()
    envelope = seal(key, b"cross-border record", b"ad")
    for index in range(len(envelope)):
        bad = bytearray(envelope)
        bad[index] ^= 0x80
        with pytest.raises(DecryptionError):
            unseal(key, bytes(bad), b"ad")
    with pytest.raises(DecryptionError):
        unseal(key, envelope, b"other ad")
    with pytest.raises(DecryptionError):
        unseal(generate_key(), envelope, b"ad")
    with pytest.raises(DecryptionError, match="too short"):
        unseal(key, envelope[: ENVELOPE_OVERHEAD - 1], b"ad")
    with pytest.raises(DecryptionError, match="version"):
        unseal(key, b"\x02" + envelope[1:], b"ad")


def test_keys_must_be_16_bytes() -> None:
    for size in (0, 15, 17, 32):
        with pytest.raises(InvalidKey):
            seal(bytes(size), b"x")
        with pytest.raises(InvalidKey):
            SM4GCM(bytes(size))


def test_gcm_object_hides_its_key() -> None:
    key = bytes.fromhex("00112233445566778899aabbccddeeff")
    gcm = SM4GCM(key)
    assert key.hex() not in repr(gcm)
    assert "00112233" not in str(gcm)
    with pytest.raises(TypeError):
        pickle.dumps(gcm)
