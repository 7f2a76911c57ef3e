"""A small, strict DER encoder and decoder for the few ASN.1 shapes SM2 needs.

``cryptography`` does not know the SM2 curve, so PKCS#8, SubjectPublicKeyInfo, SEC1 and the
``SEQUENCE{r, s}`` signature are handled here. The reader is deliberately unforgiving
(X.690 DER, not BER): definite minimal lengths only, minimal INTEGER encodings, no trailing
bytes. Accepting several encodings of one value would let a signature or key be altered
without changing its meaning, which breaks anything that compares or hashes encodings.
"""

from __future__ import annotations

__all__ = [
    "TAG_BIT_STRING",
    "TAG_CONTEXT_0",
    "TAG_CONTEXT_1",
    "TAG_INTEGER",
    "TAG_OCTET_STRING",
    "TAG_OID",
    "TAG_SEQUENCE",
    "DerError",
    "DerReader",
    "bit_string",
    "integer",
    "octet_string",
    "oid",
    "sequence",
    "tlv",
]

TAG_INTEGER = 0x02
TAG_BIT_STRING = 0x03
TAG_OCTET_STRING = 0x04
TAG_OID = 0x06
TAG_SEQUENCE = 0x30
TAG_CONTEXT_0 = 0xA0  # [0] EXPLICIT, constructed
TAG_CONTEXT_1 = 0xA1  # [1] EXPLICIT, constructed

# Nothing this package parses comes near 64 KiB; a bound keeps a hostile length field cheap.
_MAX_LENGTH = 0xFFFF


class DerError(ValueError):
    """Malformed DER. Callers turn it into InvalidKey or InvalidSignature."""


# -- encoding ---------------------------------------------------------------------------


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _length(len(content)) + content


def integer(value: int) -> bytes:
    """Encode a non-negative INTEGER in its minimal two's-complement form."""
    if value < 0:
        raise ValueError("only non-negative INTEGERs are used here")
    # One extra bit for the sign keeps values with the top bit set positive.
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return tlv(TAG_INTEGER, body)


def octet_string(content: bytes) -> bytes:
    return tlv(TAG_OCTET_STRING, content)


def bit_string(content: bytes) -> bytes:
    """A BIT STRING holding whole octets (leading 0 = no unused bits)."""
    return tlv(TAG_BIT_STRING, b"\x00" + content)


def sequence(*items: bytes) -> bytes:
    return tlv(TAG_SEQUENCE, b"".join(items))


def oid(dotted: str) -> bytes:
    """Encode an OBJECT IDENTIFIER given in dotted form."""
    arcs = [int(a) for a in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] > 39):
        raise ValueError(f"invalid OID {dotted}")
    out = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return tlv(TAG_OID, bytes(out))


# -- decoding ---------------------------------------------------------------------------


class DerReader:
    """Reads consecutive TLVs from a buffer; every read checks the tag it expects."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def at_end(self) -> bool:
        return self._pos == len(self._data)

    def expect_end(self) -> None:
        if not self.at_end():
            raise DerError("trailing bytes after DER value")

    def peek_tag(self) -> int | None:
        return None if self.at_end() else self._data[self._pos]

    def read(self, tag: int) -> bytes:
        """Return the content of the next TLV, which must carry ``tag``."""
        data, pos = self._data, self._pos
        if pos + 2 > len(data):
            raise DerError("truncated DER value")
        if data[pos] != tag:
            raise DerError(f"expected DER tag 0x{tag:02x}, found 0x{data[pos]:02x}")
        first = data[pos + 1]
        pos += 2
        if first < 0x80:
            length = first
        else:
            count = first & 0x7F
            if count == 0:
                raise DerError("indefinite length is not DER")
            if count > 2 or pos + count > len(data):
                raise DerError("DER length is too long")
            length = int.from_bytes(data[pos : pos + count], "big")
            pos += count
            # X.690 10.1: the shortest form is mandatory.
            if length < 0x80 or length.bit_length() <= 8 * (count - 1):
                raise DerError("non-minimal DER length")
            if length > _MAX_LENGTH:
                raise DerError("DER length is too long")
        end = pos + length
        if end > len(data):
            raise DerError("truncated DER value")
        self._pos = end
        return data[pos:end]

    def read_sequence(self) -> DerReader:
        return DerReader(self.read(TAG_SEQUENCE))

    def read_unsigned(self) -> int:
        """Read an INTEGER that must be minimally encoded and non-negative."""
        body = self.read(TAG_INTEGER)
        if not body:
            raise DerError("empty INTEGER")
        if len(body) > 1 and (
            (body[0] == 0x00 and body[1] < 0x80) or (body[0] == 0xFF and body[1] >= 0x80)
        ):
            raise DerError("non-minimal INTEGER")
        if body[0] & 0x80:
            raise DerError("negative INTEGER")
        return int.from_bytes(body, "big")

    def read_bit_string(self) -> bytes:
        """Read a BIT STRING of whole octets (unused-bits count must be 0)."""
        body = self.read(TAG_BIT_STRING)
        if not body or body[0] != 0:
            raise DerError("BIT STRING with unused bits")
        return body[1:]

    def read_oid(self, expected: bytes, what: str) -> None:
        """Read an OBJECT IDENTIFIER TLV and require it to equal the encoded ``expected``."""
        body = self.read(TAG_OID)
        if tlv(TAG_OID, body) != expected:
            raise DerError(f"unexpected {what} OID")
