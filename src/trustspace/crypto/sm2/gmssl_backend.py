"""Pure-Python SM2 backend on top of the ``gmssl`` package; it always loads.

Only gmssl's scalar multiplication (``CryptSM2._kg``) is used. The rest of its SM2 API is
avoided on purpose, because with gmssl 3.2.2:

* ``sign_with_sm3`` draws k from :mod:`random` (``func.random_hex``), which is not a
  cryptographic generator: signatures would leak the private key;
* its Z/e uses gmssl's pure-Python SM3 and only the default signer ID;
* ``CryptSM2(public_key=...)`` strips *every* leading "0" and "4" character with
  ``lstrip("04")``, corrupting keys whose X starts with those hex digits;
* ``verify`` does not range-check r and s, returns a projective X when sG == tP_A and
  crashes when sG == -tP_A.

So k comes from :mod:`secrets`, Z/e from :mod:`trustspace.crypto.sm2.digest` (OpenSSL SM3),
and the verification equation is assembled here with a complete point addition.
``_kg`` is correct for the inputs we give it: a scalar in [1, n-1] and a point of order n
(double-and-add never meets the exceptional cases of its addition formula then).

Python integers are not constant time: this backend is the always-available fallback, not
the one to use for long-term keys on shared hardware.
"""

from __future__ import annotations

import secrets

from gmssl import sm2 as _gmssl_sm2

from trustspace.crypto.errors import CryptoError
from trustspace.crypto.sm2 import curve
from trustspace.crypto.sm2.backend import NativeKeyCache
from trustspace.crypto.sm2.curve import GX, GY, N, Point
from trustspace.crypto.sm2.digest import message_digest
from trustspace.crypto.sm2.encoding import Signature, encode_signature
from trustspace.crypto.sm2.selftest import run_selftest

__all__ = ["GmsslBackend", "load"]

_HEX_COORD = 64


class GmsslBackend:
    """SM2 with gmssl's pure-Python point arithmetic."""

    name = "gmssl"

    def __init__(self) -> None:
        # _kg reads only the curve table, so one instance is shared by all threads.
        # Empty key strings keep gmssl's key-munging constructor out of the picture.
        self._sm2 = _gmssl_sm2.CryptSM2(private_key="", public_key="")
        self.version = f"gmssl {_gmssl_version()} (pure Python)"

    def _mul(self, k: int, point: Point) -> Point:
        """k·point for k in [1, n-1]; the result is checked so a library bug cannot pass."""
        text = "%064x%064x" % point  # noqa: UP031  (gmssl's own hex layout)
        out = self._sm2._kg(k, text)
        if not isinstance(out, str) or len(out) != 2 * _HEX_COORD:
            raise CryptoError("gmssl scalar multiplication failed")
        result = (int(out[:_HEX_COORD], 16), int(out[_HEX_COORD:], 16))
        if not curve.is_on_curve(*result):
            raise CryptoError("gmssl scalar multiplication left the curve")
        return result

    def derive_public(self, d: int) -> Point:
        return self._mul(d, (GX, GY))

    def sign(
        self, d: int, public: Point, message: bytes, distid: bytes, cache: NativeKeyCache
    ) -> bytes:
        e = message_digest(public, message, distid)
        while True:
            k = 1 + secrets.randbelow(N - 1)
            signature = self.sign_digest_with_k(d, e, k)
            if signature is not None:
                return encode_signature(*signature)

    def sign_digest_with_k(self, d: int, e: int, k: int) -> tuple[int, int] | None:
        """GB/T 32918.2-2016, 6.1 steps A4-A6 with a caller-chosen k.

        Not part of the public API: a fixed k is only for reproducing the standard's example.
        Returns None when this k must be rejected (r = 0, r + k = n or s = 0).
        """
        x1, _ = self._mul(k, (GX, GY))
        r = (e + x1) % N
        if r == 0 or r + k == N:
            return None
        s = pow(1 + d, -1, N) * (k - r * d) % N
        if s == 0:
            return None
        return (r, s)

    def verify(
        self,
        public: Point,
        message: bytes,
        signature: Signature,
        distid: bytes,
        cache: NativeKeyCache,
    ) -> bool:
        e = message_digest(public, message, distid)
        return self.verify_digest(public, e, (signature.r, signature.s))

    def verify_digest(self, public: Point, e: int, signature: tuple[int, int]) -> bool:
        """GB/T 32918.2-2016, 7.1 steps B1-B7 for a given e (B3-B4 are the caller's)."""
        r, s = signature
        if not (1 <= r < N and 1 <= s < N):
            return False
        t = (r + s) % N
        if t == 0:
            return False
        # Complete addition: s·G and t·P_A may be equal (doubling) or opposite (infinity).
        point = curve.add(self._mul(s, (GX, GY)), self._mul(t, public))
        if point is None:
            return False
        return (e + point[0]) % N == r


def _gmssl_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gmssl")
    except PackageNotFoundError:  # pragma: no cover - vendored copies
        return "unknown"


def load() -> GmsslBackend:
    backend = GmsslBackend()
    run_selftest(backend)
    return backend
