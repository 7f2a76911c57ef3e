"""SM3 (GB/T 32905-2016) digests and HMAC-SM3, computed by OpenSSL through ``cryptography``.

There is deliberately no pure-Python fallback: a slow SM3 would be the bottleneck of every
signature, audit-chain entry and payload check.
"""

from __future__ import annotations

import hmac as _hmac
from typing import BinaryIO

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _crypto_hmac

__all__ = [
    "DIGEST_SIZE",
    "HMACSM3",
    "SM3",
    "hmac_sm3",
    "sm3",
    "sm3_file",
    "verify_hmac_sm3",
]

DIGEST_SIZE = 32
_CHUNK = 1 << 16
_ALGORITHM = hashes.SM3()
# Copying an initialised context skips OpenSSL's per-Hash algorithm fetch (about half of
# the fixed cost per call). It is only ever copied, never updated, so sharing is safe.
_INITIAL = hashes.Hash(_ALGORITHM)


def sm3(data: bytes) -> bytes:
    """One-shot SM3 digest (32 bytes)."""
    h = _INITIAL.copy()
    h.update(data)
    return h.finalize()


def sm3_file(stream: BinaryIO) -> bytes:
    """SM3 of everything readable from a binary stream, read in 64 KiB chunks."""
    h = SM3()
    while chunk := stream.read(_CHUNK):
        h.update(chunk)
    return h.digest()


class SM3:
    """Incremental SM3 in the style of :mod:`hashlib` (``update`` / ``digest`` / ``copy``).

    Unlike ``cryptography``'s Hash, ``digest()`` may be called more than once and the object
    stays usable, which is what code written against hashlib expects.
    """

    __slots__ = ("_h",)
    digest_size = DIGEST_SIZE
    block_size = 64
    name = "sm3"

    def __init__(self, data: bytes = b"") -> None:
        self._h = _INITIAL.copy()
        if data:
            self._h.update(data)

    def update(self, data: bytes) -> None:
        self._h.update(data)

    def copy(self) -> SM3:
        clone = SM3.__new__(SM3)
        clone._h = self._h.copy()
        return clone

    def digest(self) -> bytes:
        return self._h.copy().finalize()

    def hexdigest(self) -> str:
        return self.digest().hex()


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    """One-shot HMAC-SM3 (RFC 2104 construction over SM3, 32-byte tag)."""
    h = _crypto_hmac.HMAC(key, _ALGORITHM)
    h.update(data)
    return h.finalize()


def verify_hmac_sm3(key: bytes, data: bytes, tag: bytes) -> bool:
    """Check an HMAC-SM3 tag in constant time."""
    return _hmac.compare_digest(hmac_sm3(key, data), tag)


class HMACSM3:
    """Incremental HMAC-SM3; ``verify`` compares in constant time."""

    __slots__ = ("_h",)
    digest_size = DIGEST_SIZE

    def __init__(self, key: bytes, data: bytes = b"") -> None:
        self._h = _crypto_hmac.HMAC(key, _ALGORITHM)
        if data:
            self._h.update(data)

    def update(self, data: bytes) -> None:
        self._h.update(data)

    def copy(self) -> HMACSM3:
        clone = HMACSM3.__new__(HMACSM3)
        clone._h = self._h.copy()
        return clone

    def digest(self) -> bytes:
        return self._h.copy().finalize()

    def hexdigest(self) -> str:
        return self.digest().hex()

    def verify(self, tag: bytes) -> bool:
        return _hmac.compare_digest(self.digest(), tag)

    def __repr__(self) -> str:
        # The key is the secret; never show it, nor the running state derived from it.
        return "HMACSM3(<keyed>)"
