"""SM2 digital signatures (GB/T 32918) on the recommended curve.

Key classes live in :mod:`.keys`; the curve work is done by a backend chosen in
:mod:`.backend` (OpenSSL's libcrypto when present, pure Python always).
"""

from trustspace.crypto.sm2.backend import (
    ENV_VAR,
    PREFERENCE,
    BackendStatus,
    SM2Backend,
    backend_status,
    default_backend,
    get_backend,
)
from trustspace.crypto.sm2.digest import DEFAULT_DISTID
from trustspace.crypto.sm2.keys import SM2PrivateKey, SM2PublicKey

__all__ = [
    "DEFAULT_DISTID",
    "ENV_VAR",
    "PREFERENCE",
    "BackendStatus",
    "SM2Backend",
    "SM2PrivateKey",
    "SM2PublicKey",
    "backend_status",
    "default_backend",
    "get_backend",
]
