"""Several transfer frames to one peer in one request, under one SM2 signature.

Per transfer, the SM2 request signature (source) and its verification (destination) were
the largest single costs of a delivery, with one HTTPS request each. When transfers to the
same peer queue up, the source sends them together::

    b"TSB1" || u32 len(manifest) || manifest || frame_1 || ... || frame_n

``manifest`` is canonical JSON ``{"v": 1, "frames": [{"digest": sm3(frame_i), "size":
len(frame_i)}, ...]}`` and is what the request signature of :mod:`trustspace.audit.auth`
covers (in place of the whole body). The destination verifies that one signature, then
checks every frame against its digest and size, and that nothing else is in the body: each
frame is exactly as authenticated as if it had come alone. Each frame is still its own
transfer, SM4-GCM encrypted end to end under its own key, decided, audited and answered on
its own. As evidence the destination keeps the manifest once and, per transfer, the
signature, the manifest's digest and the frame's index and digest, so any single transfer
can be checked later without the others' ciphertexts.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

from trustspace.canonical import canonical_json
from trustspace.crypto import sm3
from trustspace_agent.gateway.envelope import EnvelopeError

MAGIC = b"TSB1"
BATCH_PATH = "/v1/inbound/batch"
BATCH_TYPE = "application/vnd.trustspace.transfer-batch"
#: A batch never grows beyond this many frames or bytes (a larger frame goes alone), so a
#: batch fits every receiver's body limit whatever its own ``maxPayloadBytes``.
MAX_FRAMES = 512
MAX_BYTES = 1024 * 1024
_LEN = struct.Struct(">I")
_MAX_MANIFEST = 128 * 1024


@dataclass(frozen=True)
class Batch:
    manifest: bytes
    frames: list[bytes]
    digests: list[str]


def encode_batch(frames: list[bytes]) -> tuple[bytes, bytes]:
    """(manifest, body): the manifest is what the sender signs."""
    entries = [{"digest": sm3(f).hex(), "size": len(f)} for f in frames]
    manifest = canonical_json({"v": 1, "frames": entries})
    return manifest, b"".join([MAGIC, _LEN.pack(len(manifest)), manifest, *frames])


def split_manifest(body: bytes) -> tuple[bytes, int]:
    """The manifest (to authenticate) and where the frames start."""
    if body[:4] != MAGIC or len(body) < 8:
        raise EnvelopeError("batch", "body is not a trustspace transfer batch (TSB1)")
    (n,) = _LEN.unpack_from(body, 4)
    if n > _MAX_MANIFEST or len(body) < 8 + n:
        raise EnvelopeError("manifest", f"batch manifest length {n} is out of range")
    return body[8 : 8 + n], 8 + n


def open_batch(body: bytes) -> Batch:
    """Frames checked against the (already authenticated) manifest: every byte of the body
    is accounted for, every frame has the digest the signer listed."""
    manifest, pos = split_manifest(body)
    try:
        doc = json.loads(manifest)
        entries = doc["frames"]
        sizes = [int(e["size"]) for e in entries]
        digests = [str(e["digest"]) for e in entries]
    except (ValueError, KeyError, TypeError):
        raise EnvelopeError("manifest", "batch manifest is not {v, frames: [...]}") from None
    if doc.get("v") != 1 or not 0 < len(entries) <= MAX_FRAMES or min(sizes) < 0:
        raise EnvelopeError("manifest", "batch manifest has the wrong shape")
    if canonical_json(doc) != manifest:
        raise EnvelopeError("manifest", "batch manifest is not canonical JSON")
    if pos + sum(sizes) != len(body):
        raise EnvelopeError("batch", "batch body does not match its manifest's sizes")
    frames = []
    for size, digest in zip(sizes, digests, strict=True):
        frame = body[pos : pos + size]
        pos += size
        if sm3(frame).hex() != digest:
            raise EnvelopeError("batch", "a frame does not match its manifest digest")
        frames.append(frame)
    return Batch(manifest, frames, digests)
