"""Exceptions raised by :mod:`trustspace.crypto`.

Every message is a single line that names what was wrong and never carries key material,
plaintext or the bytes that failed to parse: these messages end up in logs and in the
status of Kubernetes objects.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailable",
    "CryptoError",
    "DecryptionError",
    "InvalidKey",
    "InvalidSignature",
]


class CryptoError(Exception):
    """Base class of every error raised by the crypto package."""


class InvalidKey(CryptoError, ValueError):
    """A key could not be parsed or failed validation (wrong OID, point not on the curve...)."""


class InvalidSignature(CryptoError):
    """A signature is malformed or does not verify for this key, message and signer ID."""


class DecryptionError(CryptoError):
    """Ciphertext failed authentication or is malformed; no plaintext is released."""


class BackendUnavailable(CryptoError):
    """A requested SM2 backend cannot be used on this machine."""
