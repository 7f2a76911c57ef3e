"""SM2 key and signature encodings: PKCS#8, SubjectPublicKeyInfo, SEC1 and PEM.

The output is byte-for-byte what OpenSSL 3 writes for
``openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:SM2`` (algorithm id-ecPublicKey,
named curve 1.2.156.10197.1.301, the inner SEC1 key carrying the public point and no
parameters), so keys move between this package and the OpenSSL CLI unchanged.
Signatures are DER ``SEQUENCE { r INTEGER, s INTEGER }`` (GB/T 35276-2017, 7.3), which is
what ``openssl dgst -sign`` writes.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import NamedTuple

from trustspace.crypto import der
from trustspace.crypto.der import DerError, DerReader
from trustspace.crypto.errors import InvalidKey, InvalidSignature
from trustspace.crypto.sm2.curve import COORDINATE_BYTES, N, Point, decode_point, encode_point

__all__ = [
    "OID_EC_PUBLIC_KEY",
    "OID_SM2_CURVE",
    "Signature",
    "check_private_scalar",
    "decode_pkcs8",
    "decode_private_der",
    "decode_sec1",
    "decode_signature",
    "decode_spki",
    "encode_pkcs8",
    "encode_signature",
    "encode_spki",
    "pem_blocks",
    "pem_encode",
]

# RFC 5480 2.1.1: id-ecPublicKey; GM/T 0006-2012: the SM2 curve (sm2p256v1).
OID_EC_PUBLIC_KEY = der.oid("1.2.840.10045.2.1")
OID_SM2_CURVE = der.oid("1.2.156.10197.1.301")
_ALGORITHM = der.sequence(OID_EC_PUBLIC_KEY, OID_SM2_CURVE)

PEM_PRIVATE_KEY = "PRIVATE KEY"
PEM_PUBLIC_KEY = "PUBLIC KEY"
# SEC1 ECPrivateKey; OpenSSL 3 labels it "SM2 PRIVATE KEY" for SM2 keys (`openssl ec`).
PEM_SEC1_LABELS = ("EC PRIVATE KEY", "SM2 PRIVATE KEY")


# -- signatures ------------------------------------------------------------------------


class Signature(NamedTuple):
    """A strictly decoded signature: r and s in [1, n-1], and its (canonical) DER."""

    r: int
    s: int
    der: bytes


def encode_signature(r: int, s: int) -> bytes:
    return der.sequence(der.integer(r), der.integer(s))


def decode_signature(data: bytes) -> Signature:
    """Strictly decode ``SEQUENCE{r, s}``; r and s must lie in [1, n-1].

    DER has one encoding per value, so the bytes that pass are canonical and can be handed
    on unchanged.
    """
    data = bytes(data)
    try:
        outer = DerReader(data)
        seq = outer.read_sequence()
        outer.expect_end()
        r = seq.read_unsigned()
        s = seq.read_unsigned()
        seq.expect_end()
    except DerError as exc:
        raise InvalidSignature(f"malformed signature: {exc}") from None
    if not (1 <= r < N and 1 <= s < N):
        raise InvalidSignature("malformed signature: r or s is outside [1, n-1]")
    return Signature(r, s, data)


# -- keys -------------------------------------------------------------------------------


def check_private_scalar(d: int) -> int:
    # GB/T 32918.1-2016, 6.1: d in [1, n-2] (1 + d must be invertible mod n for signing).
    if not 1 <= d <= N - 2:
        raise InvalidKey("private key scalar is outside [1, n-2]")
    return d


def encode_spki(point: Point) -> bytes:
    return der.sequence(_ALGORITHM, der.bit_string(encode_point(point)))


def decode_spki(data: bytes) -> Point:
    try:
        outer = DerReader(bytes(data))
        spki = outer.read_sequence()
        outer.expect_end()
        _read_algorithm(spki)
        point = spki.read_bit_string()
        spki.expect_end()
    except DerError as exc:
        raise InvalidKey(f"malformed SM2 public key: {exc}") from None
    return decode_point(point)


def _read_algorithm(reader: DerReader) -> None:
    alg = reader.read_sequence()
    alg.read_oid(OID_EC_PUBLIC_KEY, "key algorithm")
    alg.read_oid(OID_SM2_CURVE, "curve")
    alg.expect_end()


def _sec1_body(d: int, point: Point | None, with_curve: bool) -> bytes:
    parts = [der.integer(1), der.octet_string(d.to_bytes(COORDINATE_BYTES, "big"))]
    if with_curve:
        parts.append(der.tlv(der.TAG_CONTEXT_0, OID_SM2_CURVE))
    if point is not None:
        parts.append(der.tlv(der.TAG_CONTEXT_1, der.bit_string(encode_point(point))))
    return der.sequence(*parts)


def encode_pkcs8(d: int, point: Point | None) -> bytes:
    """PKCS#8 PrivateKeyInfo; ``point=None`` leaves the public key out (OpenSSL derives it)."""
    return der.sequence(der.integer(0), _ALGORITHM, der.octet_string(_sec1_body(d, point, False)))


def decode_sec1(data: bytes, *, curve_required: bool = False) -> tuple[int, Point | None]:
    """SEC1 ECPrivateKey (RFC 5915). Returns (d, public point or None)."""
    try:
        outer = DerReader(bytes(data))
        seq = outer.read_sequence()
        outer.expect_end()
        if seq.read_unsigned() != 1:
            raise DerError("unsupported ECPrivateKey version")
        secret = seq.read(der.TAG_OCTET_STRING)
        if len(secret) != COORDINATE_BYTES:
            raise DerError("private key is not 32 bytes")
        if seq.peek_tag() == der.TAG_CONTEXT_0:
            params = DerReader(seq.read(der.TAG_CONTEXT_0))
            # Only the named SM2 curve: explicit parameters could describe any curve.
            params.read_oid(OID_SM2_CURVE, "curve")
            params.expect_end()
        elif curve_required:
            raise DerError("EC private key names no curve")
        encoded_point = None
        if seq.peek_tag() == der.TAG_CONTEXT_1:
            pub = DerReader(seq.read(der.TAG_CONTEXT_1))
            encoded_point = pub.read_bit_string()
            pub.expect_end()
        seq.expect_end()
    except DerError as exc:
        raise InvalidKey(f"malformed SM2 private key: {exc}") from None
    d = check_private_scalar(int.from_bytes(secret, "big"))
    return d, (decode_point(encoded_point) if encoded_point is not None else None)


def decode_pkcs8(data: bytes) -> tuple[int, Point | None]:
    """PKCS#8 PrivateKeyInfo holding an SM2 key. Returns (d, public point or None)."""
    try:
        outer = DerReader(bytes(data))
        seq = outer.read_sequence()
        outer.expect_end()
        if seq.read_unsigned() != 0:
            raise DerError("unsupported PKCS#8 version")
        _read_algorithm(seq)
        inner = seq.read(der.TAG_OCTET_STRING)
        if not seq.at_end():
            raise DerError("PKCS#8 attributes are not supported")
    except DerError as exc:
        raise InvalidKey(f"malformed SM2 private key: {exc}") from None
    return decode_sec1(inner)


def decode_private_der(data: bytes) -> tuple[int, Point | None]:
    """PKCS#8 or SEC1, told apart by their version field (0 and 1 respectively)."""
    try:
        version = DerReader(bytes(data)).read_sequence().read_unsigned()
    except DerError as exc:
        raise InvalidKey(f"malformed SM2 private key: {exc}") from None
    if version == 1:
        # A bare SEC1 key must name its curve; nothing else says it is SM2.
        return decode_sec1(data, curve_required=True)
    return decode_pkcs8(data)


# -- PEM --------------------------------------------------------------------------------

_PEM_RE = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END ([A-Z0-9 ]+)-----", re.DOTALL
)


def pem_encode(label: str, body: bytes) -> bytes:
    text = base64.encodebytes(body).replace(b"\n", b"")
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    head = f"-----BEGIN {label}-----\n".encode()
    tail = f"-----END {label}-----\n".encode()
    return head + b"\n".join(lines) + b"\n" + tail


def pem_blocks(data: bytes | str) -> list[tuple[str, bytes]]:
    """All PEM blocks in ``data`` as (label, DER). Text around the blocks is ignored."""
    raw = data.encode("ascii", "replace") if isinstance(data, str) else bytes(data)
    blocks = []
    for match in _PEM_RE.finditer(raw):
        label, body, end_label = match.group(1), match.group(2), match.group(3)
        if label != end_label:
            raise InvalidKey("PEM BEGIN and END labels differ")
        if b"Proc-Type:" in body or b"DEK-Info:" in body:
            raise InvalidKey("encrypted PEM keys are not supported")
        try:
            decoded = base64.b64decode(b"".join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidKey("PEM body is not valid base64") from None
        blocks.append((label.decode("ascii"), decoded))
    return blocks
