"""Optional SM2 backend on ``gmssl_pyx`` (a C extension wrapping GmSSL 3).

Installed with the ``gmssl-pyx`` extra. We hand it e = SM3(Z_A || M) computed here rather
than its own Z/e path, so the signer ID handling is the same as in every other backend.
gmssl_pyx cannot derive a public key from a private one; that rare step (once per loaded
key) is done by the pure-Python backend.

GmSSL prints a two-line trace to stderr whenever a signature fails to verify; that is the
library's doing and harmless, and one more reason this backend ranks after OpenSSL.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import gmssl_pyx  # type: ignore[import-untyped,import-not-found,unused-ignore]

from trustspace.crypto.errors import CryptoError
from trustspace.crypto.sm2.backend import NativeKeyCache
from trustspace.crypto.sm2.curve import COORDINATE_BYTES, Point
from trustspace.crypto.sm2.digest import message_digest
from trustspace.crypto.sm2.encoding import Signature, decode_signature
from trustspace.crypto.sm2.gmssl_backend import GmsslBackend
from trustspace.crypto.sm2.selftest import run_selftest

__all__ = ["GmsslPyxBackend", "load"]


def _raw_point(point: Point) -> bytes:
    return point[0].to_bytes(COORDINATE_BYTES, "big") + point[1].to_bytes(COORDINATE_BYTES, "big")


class GmsslPyxBackend:
    name = "gmssl_pyx"

    def __init__(self) -> None:
        self._derive = GmsslBackend()
        try:
            self.version = f"gmssl_pyx {version('gmssl_pyx')}"
        except PackageNotFoundError:  # pragma: no cover
            self.version = "gmssl_pyx"

    def derive_public(self, d: int) -> Point:
        return self._derive.derive_public(d)

    def sign(
        self, d: int, public: Point, message: bytes, distid: bytes, cache: NativeKeyCache
    ) -> bytes:
        e = message_digest(public, message, distid).to_bytes(32, "big")
        try:
            signature = gmssl_pyx.sm2_sign_sm3_digest(d.to_bytes(COORDINATE_BYTES, "big"), e)
        except gmssl_pyx.GmsslInnerError:
            raise CryptoError("GmSSL SM2 signing failed") from None
        return decode_signature(signature).der

    def verify(
        self,
        public: Point,
        message: bytes,
        signature: Signature,
        distid: bytes,
        cache: NativeKeyCache,
    ) -> bool:
        e = message_digest(public, message, distid).to_bytes(32, "big")
        try:
            return bool(gmssl_pyx.sm2_verify_sm3_digest(_raw_point(public), e, signature.der))
        except gmssl_pyx.GmsslInnerError:
            return False


def load() -> GmsslPyxBackend:
    backend = GmsslPyxBackend()
    run_selftest(backend, check_forgery=False)
    return backend
