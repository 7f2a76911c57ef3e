"""Known-answer self-test run when a backend loads.

A backend that silently did ECDSA instead of SM2, used another curve, or hashed a different
Z value would still round-trip its own signatures; only a published answer catches that.
The vector is the signature example over the recommended curve in GM/T 0003.5-2012,
Annex A (the same curve as GB/T 32918.5-2017): d_A, message "message digest", signer ID
"1234567812345678" and the published k give the (r, s) below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trustspace.crypto.errors import BackendUnavailable
from trustspace.crypto.sm2.backend import NativeKeyCache
from trustspace.crypto.sm2.digest import DEFAULT_DISTID
from trustspace.crypto.sm2.encoding import decode_signature, encode_signature

if TYPE_CHECKING:
    from trustspace.crypto.sm2.backend import SM2Backend

__all__ = ["KAT_D", "KAT_MESSAGE", "KAT_PUBLIC", "KAT_SIGNATURE", "run_selftest"]

KAT_D = 0x3945208F_7B2144B1_3F36E38A_C6D39F95_88939369_2860B51A_42FB81EF_4DF7C5B8
KAT_PUBLIC = (
    0x09F9DF31_1E5421A1_50DD7D16_1E4BC5C6_72179FAD_1833FC07_6BB08FF3_56F35020,
    0xCCEA490C_E26775A5_2DC6EA71_8CC1AA60_0AED05FB_F35E084A_6632F607_2DA9AD13,
)
KAT_MESSAGE = b"message digest"
KAT_SIGNATURE = (
    0xF5A03B06_48D2C463_0EEAC513_E1BB81A1_5944DA38_27D5B741_43AC7EAC_EEE720B3,
    0xB1B6AA29_DF212FD8_763182BC_0D421CA1_BB9038FD_1F7F42D4_840B69C4_85BBC1AA,
)


def run_selftest(backend: SM2Backend, *, check_forgery: bool = True) -> None:
    """Raise BackendUnavailable unless the backend reproduces the published example.

    ``check_forgery=False`` skips the negative case, for a library that writes a trace to
    stderr on every failed verification (GmSSL); the unit tests cover it instead.
    """
    cache = NativeKeyCache()
    signature = decode_signature(encode_signature(*KAT_SIGNATURE))
    try:
        if backend.derive_public(KAT_D) != KAT_PUBLIC:
            raise BackendUnavailable(f"{backend.name}: self-test: wrong public key")
        if not backend.verify(KAT_PUBLIC, KAT_MESSAGE, signature, DEFAULT_DISTID, cache):
            raise BackendUnavailable(f"{backend.name}: self-test: rejects the GB/T example")
        if check_forgery and backend.verify(
            KAT_PUBLIC, KAT_MESSAGE + b".", signature, DEFAULT_DISTID, cache
        ):
            raise BackendUnavailable(f"{backend.name}: self-test: accepts a forged message")
    except BackendUnavailable:
        raise
    except Exception as exc:
        raise BackendUnavailable(
            f"{backend.name}: self-test failed: {exc.__class__.__name__}"
        ) from exc
