"""SM4 (GB/T 32907-2016) in GCM and CTR modes, computed by OpenSSL through ``cryptography``.

Payloads use :func:`seal` / :func:`unseal`, a self-describing SM4-GCM envelope::

    version (1 byte, = 1) || nonce (12 bytes) || ciphertext || tag (16 bytes)

The version byte is authenticated too (it is prepended to the associated data), so an
envelope cannot be re-labelled. Nonces are random; per NIST SP 800-38D 8.3 a key should
seal at most 2**32 messages this way, far beyond what one data-space key sees.

There is deliberately no pure-Python SM4.
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from trustspace.crypto.errors import DecryptionError, InvalidKey

__all__ = [
    "BLOCK_SIZE",
    "ENVELOPE_OVERHEAD",
    "ENVELOPE_VERSION",
    "KEY_SIZE",
    "NONCE_SIZE",
    "SM4GCM",
    "TAG_SIZE",
    "ctr_decrypt",
    "ctr_encrypt",
    "generate_key",
    "seal",
    "unseal",
]

KEY_SIZE = 16
BLOCK_SIZE = 16
NONCE_SIZE = 12
TAG_SIZE = 16
ENVELOPE_VERSION = 1
_HEADER = bytes([ENVELOPE_VERSION])
ENVELOPE_OVERHEAD = len(_HEADER) + NONCE_SIZE + TAG_SIZE


def generate_key() -> bytes:
    return secrets.token_bytes(KEY_SIZE)


def _algorithm(key: bytes) -> algorithms.SM4:
    if len(key) != KEY_SIZE:
        raise InvalidKey("SM4 key must be 16 bytes")
    return algorithms.SM4(bytes(key))


class SM4GCM:
    """SM4-GCM with 16-byte tags, shaped like ``cryptography``'s ``AESGCM``.

    ``encrypt`` returns ciphertext || tag; ``decrypt`` raises DecryptionError and releases
    no plaintext unless the tag verifies.
    """

    __slots__ = ("_algorithm",)

    def __init__(self, key: bytes) -> None:
        self._algorithm = _algorithm(key)

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None = None) -> bytes:
        if len(nonce) != NONCE_SIZE:
            raise ValueError("SM4-GCM nonce must be 12 bytes")
        enc = Cipher(self._algorithm, modes.GCM(nonce)).encryptor()
        if associated_data:
            enc.authenticate_additional_data(associated_data)
        body = enc.update(data) + enc.finalize()
        return body + enc.tag

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None = None) -> bytes:
        if len(nonce) != NONCE_SIZE:
            raise DecryptionError("SM4-GCM nonce must be 12 bytes")
        if len(data) < TAG_SIZE:
            raise DecryptionError("SM4-GCM ciphertext is shorter than its tag")
        body, tag = data[:-TAG_SIZE], data[-TAG_SIZE:]
        dec = Cipher(self._algorithm, modes.GCM(nonce, tag)).decryptor()
        if associated_data:
            dec.authenticate_additional_data(associated_data)
        plaintext = dec.update(body)
        try:
            dec.finalize()
        except InvalidTag:
            raise DecryptionError("SM4-GCM authentication failed") from None
        return plaintext

    def __repr__(self) -> str:
        return "SM4GCM(<key>)"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("SM4GCM holds a key and cannot be pickled")


def seal(key: bytes, plaintext: bytes, associated_data: bytes = b"") -> bytes:
    """Encrypt and authenticate ``plaintext`` (and ``associated_data``) into an envelope."""
    nonce = secrets.token_bytes(NONCE_SIZE)
    return _HEADER + nonce + SM4GCM(key).encrypt(nonce, plaintext, _HEADER + associated_data)


def unseal(key: bytes, envelope: bytes, associated_data: bytes = b"") -> bytes:
    """Open an envelope made by :func:`seal`; raise DecryptionError if anything was altered."""
    if len(envelope) < ENVELOPE_OVERHEAD:
        raise DecryptionError("SM4-GCM envelope is too short")
    if envelope[0] != ENVELOPE_VERSION:
        raise DecryptionError(f"unsupported SM4-GCM envelope version {envelope[0]}")
    nonce = envelope[1 : 1 + NONCE_SIZE]
    return SM4GCM(key).decrypt(nonce, envelope[1 + NONCE_SIZE :], _HEADER + associated_data)


def ctr_encrypt(key: bytes, counter_block: bytes, data: bytes) -> bytes:
    """SM4-CTR with a 16-byte initial counter block (big-endian increment, as OpenSSL).

    CTR has no integrity: use it only under a MAC or signature, and never reuse a counter
    block with the same key.
    """
    if len(counter_block) != BLOCK_SIZE:
        raise ValueError("SM4-CTR counter block must be 16 bytes")
    enc = Cipher(_algorithm(key), modes.CTR(counter_block)).encryptor()
    return enc.update(data) + enc.finalize()


def ctr_decrypt(key: bytes, counter_block: bytes, data: bytes) -> bytes:
    """Inverse of :func:`ctr_encrypt` (the same keystream XOR)."""
    return ctr_encrypt(key, counter_block, data)
