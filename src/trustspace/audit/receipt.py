"""Evidence receipts (B4, B6 "one-click evidence + cross-border verification").

A receipt proves that a document's SM3 digest is in the hub's log. It carries the leaf (the
document entry exactly as logged), its index, an RFC 9162 inclusion proof and the signed
checkpoint the proof leads to. Anyone holding the document, the receipt and the hub's public
key PEM can check it offline with :func:`verify_receipt`; nothing else is trusted.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from trustspace.audit import merkle
from trustspace.audit.canonical import canonical_json
from trustspace.audit.checkpoint import CheckpointError, open_checkpoint
from trustspace.crypto import SM2PublicKey, sm3

RECEIPT_KIND = "trustspace.io/evidence-receipt"
RECEIPT_VERSION = 1


class ReceiptError(ValueError):
    """A receipt that does not prove what it claims."""


def document_leaf(digest_hex: str, registered_at: str, name: str | None = None) -> bytes:
    """The log entry for a registered document: only its digest, never its content."""
    entry: dict[str, Any] = {"digest": digest_hex, "registeredAt": registered_at}
    if name:
        entry["name"] = name
    return canonical_json({"document": entry})


def event_leaf(event_dict: dict[str, Any]) -> bytes:
    """The log entry for an audit event."""
    return canonical_json({"event": event_dict})


def event_leaf_from_canonical(event_canonical: bytes) -> bytes:
    """:func:`event_leaf` from the event's canonical bytes, without re-encoding: a one-key
    object in canonical JSON is exactly ``{"event":`` + the value's encoding + ``}``."""
    return b'{"event":' + event_canonical + b"}"


def build_receipt(
    *,
    document: dict[str, Any],
    leaf_index: int,
    tree_size: int,
    proof: list[bytes],
    checkpoint_note: str,
    key_name: str,
    hub_key_id: str,
) -> dict[str, Any]:
    return {
        "kind": RECEIPT_KIND,
        "version": RECEIPT_VERSION,
        "document": document,
        "leafIndex": leaf_index,
        "treeSize": tree_size,
        "inclusionProof": [base64.b64encode(p).decode() for p in proof],
        "checkpoint": checkpoint_note,
        "keyName": key_name,
        "hubKeyId": hub_key_id,
    }


def verify_receipt(receipt: Any, document: bytes, hub_key: SM2PublicKey) -> None:
    """Raise :class:`ReceiptError` unless ``receipt`` proves ``document`` is in the hub's log."""
    if not isinstance(receipt, dict) or receipt.get("kind") != RECEIPT_KIND:
        raise ReceiptError("not a trustspace evidence receipt")
    try:
        doc = receipt["document"]
        index = receipt["leafIndex"]
        size = receipt["treeSize"]
        proof = [base64.b64decode(p, validate=True) for p in receipt["inclusionProof"]]
        note = receipt["checkpoint"]
        key_name = receipt["keyName"]
        key_id = receipt["hubKeyId"]
    except (KeyError, TypeError, binascii.Error) as exc:
        raise ReceiptError(f"malformed receipt: {exc}") from None
    if not (isinstance(index, int) and isinstance(size, int) and isinstance(note, str)):
        raise ReceiptError("malformed receipt: leafIndex/treeSize/checkpoint types")
    if not isinstance(doc, dict) or not isinstance(key_name, str):
        raise ReceiptError("malformed receipt: document/keyName types")
    if key_id != hub_key.key_id:
        raise ReceiptError("receipt was issued by a different hub key than the one given")
    digest = sm3(document).hex()
    if doc.get("digest") != digest:
        raise ReceiptError("the document's SM3 digest is not the one in the receipt")
    try:
        checkpoint = open_checkpoint(note, key_name, hub_key)
    except CheckpointError as exc:
        raise ReceiptError(f"checkpoint: {exc}") from None
    if checkpoint.size != size:
        raise ReceiptError("receipt tree size differs from the signed checkpoint's")
    try:
        leaf = document_leaf(str(doc["digest"]), str(doc["registeredAt"]), doc.get("name"))
    except KeyError as exc:
        raise ReceiptError(f"malformed receipt document: missing {exc}") from None
    if canonical_json({"document": doc}) != leaf:
        raise ReceiptError("receipt document entry has unexpected fields")
    try:
        merkle.verify_inclusion(merkle.leaf_hash(leaf), index, size, proof, checkpoint.root_hash)
    except merkle.ProofError as exc:
        raise ReceiptError(f"inclusion proof: {exc}") from None
