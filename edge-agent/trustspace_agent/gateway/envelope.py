"""The protected form of a transfer on the wire: SM4-GCM for the destination, SM2 by the source.

Key choice. ``trustspace.crypto`` has SM2 signatures but no SM2 public-key encryption, and
the pure-Python SM2 encryption in ``gmssl`` costs two scalar multiplications (tens of ms) per
message, which would cap a gateway at a few dozen transfers a second. Instead both ends run
the static Diffie-Hellman step of SM2 key agreement (GB/T 32918.3) on their *node keys* from
the trust bundle: ``Z = x(d_src * P_dst) = x(d_dst * P_src)``. Only the two key holders can
compute ``Z``, so it is implicitly authenticated; it is computed once per key pair and
cached. Each transfer then gets its own SM4 key from the SM3 KDF of GB/T 32918.4 (5.4.3)
over ``Z``, both node and key ids, the transfer id and a random salt, so no two transfers
share a key and a key rotation on either side changes every later key. The cost of the
choice: no forward secrecy at this layer (whoever steals a node key can decrypt what was
sent to or from it under that key); TLS (ECDHE) gives forward secrecy in transit, and key
rotation bounds the exposure at rest.

The SM2 signature of the source is the request signature of :mod:`trustspace.audit.auth`
over the whole framed body (header, approvals, ciphertext): one signature authenticates the
request and signs the envelope, and the destination keeps it as evidence.

Frame: ``b"TSX1" || u32 len(core) || core || u32 len(approvals) || approvals || sealed``,
where ``core`` is canonical JSON and also the SM4-GCM associated data, and ``approvals`` is
canonical JSON of the signed approvals (added when a held transfer is released).
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass
from typing import Any

import orjson

from trustspace.audit.canonical import canonical_json
from trustspace.crypto import SM2PrivateKey, SM2PublicKey, seal, sm3, unseal
from trustspace.crypto.sm2.curve import Point, add

MAGIC = b"TSX1"
_LEN = struct.Struct(">I")
_MAX_HEADER = 256 * 1024


class EnvelopeError(ValueError):
    """A frame that does not parse; ``field`` names the part."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _ladder(k: int, point: Point) -> Point:
    # Montgomery ladder: the same add/double sequence whatever the bits are.
    r0: Point | None = None
    r1: Point | None = point
    for i in reversed(range(k.bit_length())):
        if (k >> i) & 1:
            r0, r1 = add(r0, r1), add(r1, r1)
        else:
            r0, r1 = add(r0, r0), add(r0, r1)
    if r0 is None:
        raise ValueError("key agreement produced the point at infinity")
    return r0


_shared: dict[tuple[str, str], bytes] = {}
_shared_lock = threading.Lock()


def shared_secret(mine: SM2PrivateKey, peer: SM2PublicKey) -> bytes:
    """``x(d_mine * P_peer)`` (32 bytes), cached per key pair."""
    cache_key = (mine.key_id, peer.key_id)
    with _shared_lock:
        found = _shared.get(cache_key)
    if found is not None:
        return found
    d = int.from_bytes(mine.to_bytes(), "big")
    x, _ = _ladder(d, peer.point)
    z = x.to_bytes(32, "big")
    with _shared_lock:
        if len(_shared) > 4096:
            _shared.clear()
        _shared[cache_key] = z
    return z


def kdf(z: bytes, length: int) -> bytes:
    """The SM3 key derivation function of GB/T 32918.4-2016, 5.4.3."""
    out = b""
    counter = 1
    while len(out) < length:
        out += sm3(z + counter.to_bytes(4, "big"))
        counter += 1
    return out[:length]


def transfer_key(
    z: bytes, source: str, destination: str, src_key_id: str, dst_key_id: str, tid: str, salt: str
) -> bytes:
    context = "\n".join(
        ["trustspace/transfer-key/v1", source, destination, src_key_id, dst_key_id, tid, salt]
    ).encode()
    return kdf(z + context, 16)


@dataclass(frozen=True)
class Frame:
    core: dict[str, Any]
    core_bytes: bytes
    approvals: list[dict[str, Any]]
    sealed: bytes


def encode_frame(core_bytes: bytes, approvals: list[dict[str, Any]], sealed: bytes) -> bytes:
    appr = canonical_json({"approvals": approvals})
    return b"".join(
        [MAGIC, _LEN.pack(len(core_bytes)), core_bytes, _LEN.pack(len(appr)), appr, sealed]
    )


def decode_frame(body: bytes) -> Frame:
    if body[:4] != MAGIC:
        raise EnvelopeError("frame", "body is not a trustspace transfer frame (TSX1)")
    pos = 4
    parts: list[bytes] = []
    for what in ("core", "approvals"):
        if len(body) < pos + 4:
            raise EnvelopeError(what, f"frame truncated before {what}")
        (n,) = _LEN.unpack_from(body, pos)
        pos += 4
        if n > _MAX_HEADER or len(body) < pos + n:
            raise EnvelopeError(what, f"frame {what} length {n} is out of range")
        parts.append(body[pos : pos + n])
        pos += n
    try:
        core = orjson.loads(parts[0])
        approvals = orjson.loads(parts[1])["approvals"]
    except (ValueError, KeyError, TypeError):
        raise EnvelopeError("core", "frame header is not JSON") from None
    if not isinstance(core, dict) or not isinstance(approvals, list):
        raise EnvelopeError("core", "frame header has the wrong shape")
    try:
        canonical = canonical_json(core)
    except TypeError:  # a float, say: no canonical form, so not what the source signed
        canonical = b""
    if canonical != parts[0]:
        raise EnvelopeError("core", "frame header is not canonical JSON")
    return Frame(core, parts[0], approvals, body[pos:])


def protect(
    core: dict[str, Any], plaintext: bytes, mine: SM2PrivateKey, peer: SM2PublicKey
) -> tuple[bytes, bytes]:
    """(canonical core, SM4-GCM envelope) for the destination whose key is ``peer``."""
    core_bytes = canonical_json(core)
    key = transfer_key(
        shared_secret(mine, peer),
        core["source"],
        core["destination"],
        mine.key_id,
        peer.key_id,
        core["id"],
        core["salt"],
    )
    return core_bytes, seal(key, plaintext, core_bytes)


def open_sealed(frame: Frame, mine: SM2PrivateKey, sender: SM2PublicKey) -> bytes:
    """Decrypt at the destination; raises ``DecryptionError`` if anything was altered."""
    c = frame.core
    key = transfer_key(
        shared_secret(mine, sender),
        str(c["source"]),
        str(c["destination"]),
        sender.key_id,
        mine.key_id,
        str(c["id"]),
        str(c["salt"]),
    )
    return unseal(key, frame.sealed, frame.core_bytes)
