"""The national crypto suite for trustspace: SM2 signatures, SM3 digests, SM4 encryption.

One import for everything the operator and the edge agent need::

    from trustspace.crypto import SM2PrivateKey, sm3, seal, unseal

SM3 and SM4 run in OpenSSL through ``cryptography``; SM2 runs in the fastest available
backend (see :mod:`trustspace.crypto.sm2.backend`). All failures are subclasses of
:class:`CryptoError`.
"""

from trustspace.crypto.errors import (
    BackendUnavailable,
    CryptoError,
    DecryptionError,
    InvalidKey,
    InvalidSignature,
)
from trustspace.crypto.sm2 import (
    DEFAULT_DISTID,
    SM2Backend,
    SM2PrivateKey,
    SM2PublicKey,
    backend_status,
    default_backend,
    get_backend,
)
from trustspace.crypto.sm3 import HMACSM3, SM3, hmac_sm3, sm3, sm3_file, verify_hmac_sm3
from trustspace.crypto.sm4 import (
    SM4GCM,
    ctr_decrypt,
    ctr_encrypt,
    generate_key,
    seal,
    unseal,
)

__all__ = [
    "DEFAULT_DISTID",
    "HMACSM3",
    "SM3",
    "SM4GCM",
    "BackendUnavailable",
    "CryptoError",
    "DecryptionError",
    "InvalidKey",
    "InvalidSignature",
    "SM2Backend",
    "SM2PrivateKey",
    "SM2PublicKey",
    "backend_status",
    "ctr_decrypt",
    "ctr_encrypt",
    "default_backend",
    "generate_key",
    "get_backend",
    "hmac_sm3",
    "seal",
    "sm3",
    "sm3_file",
    "unseal",
    "verify_hmac_sm3",
]
