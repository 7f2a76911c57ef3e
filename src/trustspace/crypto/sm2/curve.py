"""The SM2 recommended curve and the little affine arithmetic the key code needs.

Curve parameters are the 256-bit recommended curve of GB/T 32918.5-2017 (GM/T 0003.5-2012),
y^2 = x^3 + ax + b over F_p, with cofactor 1, so every point on the curve other than infinity
has prime order n and no subgroup check is needed beyond "on the curve".

Scalar multiplication is not here: it belongs to the backends (OpenSSL, GmSSL or the
pure-Python ``gmssl`` package).
"""

from __future__ import annotations

from trustspace.crypto.errors import InvalidKey

__all__ = [
    "COORDINATE_BYTES",
    "GX",
    "GY",
    "A",
    "B",
    "N",
    "P",
    "Point",
    "add",
    "decode_point",
    "encode_point",
    "is_on_curve",
    "validate_point",
]

Point = tuple[int, int]

# GB/T 32918.5-2017, clause 3 ("推荐曲线参数").
P = 0xFFFFFFFE_FFFFFFFF_FFFFFFFF_FFFFFFFF_FFFFFFFF_00000000_FFFFFFFF_FFFFFFFF
A = 0xFFFFFFFE_FFFFFFFF_FFFFFFFF_FFFFFFFF_FFFFFFFF_00000000_FFFFFFFF_FFFFFFFC
B = 0x28E9FA9E_9D9F5E34_4D5A9E4B_CF6509A7_F39789F5_15AB8F92_DDBCBD41_4D940E93
N = 0xFFFFFFFE_FFFFFFFF_FFFFFFFF_FFFFFFFF_7203DF6B_21C6052B_53BBF409_39D54123
GX = 0x32C4AE2C_1F198119_5F990446_6A39C994_8FE30BBF_F2660BE1_715A4589_334C74C7
GY = 0xBC3736A2_F4F6779C_59BDCEE3_6B692153_D0A9877C_C62A4740_02DF32E5_2139F0A0

COORDINATE_BYTES = 32


def is_on_curve(x: int, y: int) -> bool:
    return 0 <= x < P and 0 <= y < P and (y * y - (x * x * x + A * x + B)) % P == 0


def validate_point(x: int, y: int) -> Point:
    """Return ``(x, y)`` if it is a valid public point, else raise InvalidKey."""
    if not (0 <= x < P and 0 <= y < P):
        raise InvalidKey("public key coordinate is out of range")
    if not is_on_curve(x, y):
        raise InvalidKey("public key point is not on the SM2 curve")
    return (x, y)


def encode_point(point: Point) -> bytes:
    """Uncompressed SEC1 encoding, 04 || X || Y, as OpenSSL writes it."""
    x, y = point
    return b"\x04" + x.to_bytes(COORDINATE_BYTES, "big") + y.to_bytes(COORDINATE_BYTES, "big")


def decode_point(data: bytes) -> Point:
    """Decode an uncompressed or compressed SEC1 point and validate it.

    Infinity (the single byte 00) and the hybrid forms 06/07 are rejected: neither is a usable
    public key and OpenSSL never writes them for SM2.
    """
    if len(data) == 1 + 2 * COORDINATE_BYTES and data[0] == 0x04:
        x = int.from_bytes(data[1 : 1 + COORDINATE_BYTES], "big")
        y = int.from_bytes(data[1 + COORDINATE_BYTES :], "big")
        return validate_point(x, y)
    if len(data) == 1 + COORDINATE_BYTES and data[0] in (0x02, 0x03):
        x = int.from_bytes(data[1:], "big")
        if x >= P:
            raise InvalidKey("public key coordinate is out of range")
        rhs = (x * x * x + A * x + B) % P
        # p = 3 (mod 4), so a square root is rhs^((p+1)/4) when one exists.
        y = pow(rhs, (P + 1) // 4, P)
        if y * y % P != rhs:
            raise InvalidKey("public key point is not on the SM2 curve")
        if (y & 1) != (data[0] & 1):
            y = P - y
        return validate_point(x, y)
    if data[:1] == b"\x00":
        raise InvalidKey("public key is the point at infinity")
    raise InvalidKey("public key is not an SEC1 point encoding")


def add(p1: Point | None, p2: Point | None) -> Point | None:
    """Complete affine addition; ``None`` stands for the point at infinity.

    Used only to combine the two scalar products of a verification, where the special cases
    (equal or opposite points) must give the right answer rather than a crash.
    """
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    x1, y1 = p1
    x2, y2 = p2
    if x1 == x2:
        if (y1 + y2) % P == 0:
            return None
        lam = (3 * x1 * x1 + A) * pow(2 * y1, -1, P) % P
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (lam * lam - x1 - x2) % P
    return (x3, (lam * (x1 - x3) - y1) % P)
