"""Signed checkpoints in the C2SP ``tlog-checkpoint`` + ``signed-note`` text format, with SM2.

A checkpoint body is three lines: the log's origin, the tree size in decimal, the base64 root
hash. A signed note is the body, one blank line, then one line per signature::

    — <key name> <base64(key hash (4 bytes) || signature)>

(the dash is U+2014). signed-note defines its key hash as the first 4 bytes of SHA-256 over
``name || 0x0A || signature type || public key``; in keeping with the national suite we use
SM3 with signature type 0xFF ("not registered") followed by the ASCII identifier ``SM2-SM3``
and the DER SubjectPublicKeyInfo. The signature is SM2 (DER) over the body bytes.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from trustspace.crypto import InvalidSignature, SM2PrivateKey, SM2PublicKey, sm3

_DASH = "\u2014"
SIGNATURE_TYPE = b"\xffSM2-SM3"


class CheckpointError(ValueError):
    """A checkpoint or note that does not parse or verify."""


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes

    def body(self) -> bytes:
        if "\n" in self.origin or not self.origin:
            raise CheckpointError("origin must be one non-empty line")
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root_hash).decode()}\n".encode()

    @classmethod
    def parse_body(cls, body: bytes) -> Checkpoint:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise CheckpointError("checkpoint is not UTF-8") from None
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise CheckpointError("checkpoint body must have origin, size and root lines")
        origin, size_text, root_text = lines[0], lines[1], lines[2]
        if not size_text.isdigit() or (size_text.startswith("0") and size_text != "0"):
            raise CheckpointError(f"bad tree size {size_text!r}")
        try:
            root = base64.b64decode(root_text, validate=True)
        except binascii.Error:
            raise CheckpointError("root hash is not base64") from None
        if len(root) != 32:
            raise CheckpointError("root hash must be 32 bytes")
        return cls(origin=origin, size=int(size_text), root_hash=root)


def key_hash(name: str, key: SM2PublicKey) -> bytes:
    return sm3(name.encode() + b"\n" + SIGNATURE_TYPE + key.to_der())[:4]


def sign_checkpoint(checkpoint: Checkpoint, name: str, key: SM2PrivateKey) -> str:
    """The signed note text for ``checkpoint``."""
    if " " in name or "\n" in name or not name:
        raise CheckpointError("key name must be one word")
    body = checkpoint.body()
    sig = key.sign(body)
    blob = base64.b64encode(key_hash(name, key.public_key()) + sig).decode()
    return body.decode() + "\n" + f"{_DASH} {name} {blob}\n"


def open_checkpoint(note: str, name: str, key: SM2PublicKey) -> Checkpoint:
    """Verify ``note`` carries a valid signature by (``name``, ``key``); return its checkpoint.

    Signatures by other keys are ignored (a note may be cosigned); at least one by ours must
    verify, and none by ours may fail.
    """
    body_text, sep, sigs = note.partition("\n\n")
    if not sep:
        raise CheckpointError("signed note has no blank line before its signatures")
    body = (body_text + "\n").encode()
    want = key_hash(name, key)
    verified = False
    for line in sigs.split("\n"):
        if not line:
            continue
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != _DASH:
            raise CheckpointError(f"malformed signature line {line[:60]!r}")
        if parts[1] != name:
            continue
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except binascii.Error:
            raise CheckpointError("signature is not base64") from None
        if blob[:4] != want:
            continue
        try:
            key.verify(body, blob[4:])
        except (InvalidSignature, ValueError):
            raise CheckpointError("checkpoint signature does not verify") from None
        verified = True
    if not verified:
        raise CheckpointError(f"no signature by {name!r} with the given key")
    return Checkpoint.parse_body(body)
