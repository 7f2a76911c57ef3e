"""The SM2 signer-identity hash Z_A and the message representative e (GB/T 32918.2-2016, 5.5).

Both hashes are SM3 from OpenSSL (through ``cryptography``), never a pure-Python SM3.
"""

from __future__ import annotations

from trustspace.crypto.errors import CryptoError
from trustspace.crypto.sm2.curve import COORDINATE_BYTES, GX, GY, A, B, Point
from trustspace.crypto.sm3 import SM3

__all__ = ["DEFAULT_DISTID", "MAX_DISTID_BYTES", "check_distid", "message_digest", "z_value"]

# GB/T 35276-2017 / GM/T 0009-2012, 10: the signer ID used when none is agreed.
DEFAULT_DISTID = b"1234567812345678"

# ENTL_A is two bytes holding the ID length in *bits* (GB/T 32918.2, 5.5), so 8191 bytes
# would fit; OpenSSL refuses IDs of 8191 bytes and more, and every backend must agree.
MAX_DISTID_BYTES = 8190

_CURVE_PREFIX = b"".join(v.to_bytes(COORDINATE_BYTES, "big") for v in (A, B, GX, GY))


def check_distid(distid: bytes) -> bytes:
    if not isinstance(distid, bytes | bytearray):
        raise CryptoError("signer ID must be bytes")
    if len(distid) > MAX_DISTID_BYTES:
        raise CryptoError(f"signer ID is longer than {MAX_DISTID_BYTES} bytes")
    return bytes(distid)


def z_value(public: Point, distid: bytes = DEFAULT_DISTID) -> bytes:
    """Z_A = SM3(ENTL_A || ID_A || a || b || x_G || y_G || x_A || y_A)."""
    distid = check_distid(distid)
    h = SM3((8 * len(distid)).to_bytes(2, "big"))
    h.update(distid)
    h.update(_CURVE_PREFIX)
    h.update(public[0].to_bytes(COORDINATE_BYTES, "big"))
    h.update(public[1].to_bytes(COORDINATE_BYTES, "big"))
    return h.digest()


def message_digest(public: Point, message: bytes, distid: bytes = DEFAULT_DISTID) -> int:
    """e = SM3(Z_A || M) as an integer, the value that is actually signed."""
    h = SM3(z_value(public, distid))
    h.update(message)
    return int.from_bytes(h.digest(), "big")
