from __future__ import annotations

import base64

import pytest

from trustspace.audit import merkle
from trustspace.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    open_checkpoint,
    sign_checkpoint,
)
from trustspace.audit.receipt import ReceiptError, build_receipt, document_leaf, verify_receipt
from trustspace.crypto import SM2PrivateKey, sm3

HUB = SM2PrivateKey.generate()


def test_checkpoint_note_format_and_round_trip() -> None:
    cp = Checkpoint("trustspace.io/hub/audit", 42, sm3(b"root"))
    note = sign_checkpoint(cp, "trustspace-hub", HUB)
    body, sig = note.split("\n\n")
    assert body.split("\n") == [
        "trustspace.io/hub/audit",
        "42",
        base64.b64encode(sm3(b"root")).decode(),
    ]
    assert sig.startswith("\u2014 trustspace-hub ") and sig.endswith("\n")
    assert open_checkpoint(note, "trustspace-hub", HUB.public_key()) == cp
    for bad in (
        note.replace("\n42\n", "\n43\n"),
        note.replace("audit", "audiT"),
        note[:-10] + "AAAAAAAAA\n",
    ):
        with pytest.raises(CheckpointError):
            open_checkpoint(bad, "trustspace-hub", HUB.public_key())
    with pytest.raises(CheckpointError):
        open_checkpoint(note, "trustspace-hub", SM2PrivateKey.generate().public_key())


def _receipt(doc: bytes, n: int = 7, index: int = 3) -> dict:  # type: ignore[type-arg]
    entry = {"digest": sm3(doc).hex(), "registeredAt": "2026-01-01T00:00:00.000000Z"}
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(n)]
    leaves[index] = merkle.leaf_hash(document_leaf(entry["digest"], entry["registeredAt"]))
    cp = Checkpoint("o", n, merkle.root_from_hashes(leaves))
    return build_receipt(
        document=entry,
        leaf_index=index,
        tree_size=n,
        proof=merkle.inclusion_proof(leaves, index),
        checkpoint_note=sign_checkpoint(cp, "hub", HUB),
        key_name="hub",
        hub_key_id=HUB.key_id,
    )


def test_receipt_verifies_offline_and_rejects_any_change() -> None:
    doc = b"e-contract #88, Liuzhou -> Rayong"
    receipt = _receipt(doc)
    verify_receipt(receipt, doc, HUB.public_key())
    with pytest.raises(ReceiptError):
        verify_receipt(receipt, doc + b" ", HUB.public_key())
    with pytest.raises(ReceiptError):
        verify_receipt(receipt, doc, SM2PrivateKey.generate().public_key())
    for key, value in (
        ("leafIndex", 2),
        ("treeSize", 8),
        ("inclusionProof", []),
        ("document", {**receipt["document"], "name": "x"}),
    ):
        with pytest.raises(ReceiptError):
            verify_receipt({**receipt, key: value}, doc, HUB.public_key())
