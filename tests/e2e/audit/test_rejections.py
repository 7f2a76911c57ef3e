"""Every kind of bad input is rejected with a precise reason and stores nothing."""

from __future__ import annotations

import datetime as dt
import json
import time

from support.audit_harness import Harness, wait_for
from trustspace.audit.auth import sign_request
from trustspace.audit.batch import GENESIS_BATCH_HASH, Batch, seal_batch
from trustspace.audit.event import GENESIS_HASH, Event, EventFields, chain_event
from trustspace.crypto import SM2PrivateKey
from trustspace.trust import NodeKey

NODE = "edge-my"
PATH = "/v1/audit/batches"


def _events(first: int, count: int, prev: str) -> list[Event]:
    out = []
    for seq in range(first, first + count):
        e = chain_event(
            NODE, seq, prev, EventFields(actor="a", action="transfer.allowed", subject=f"s{seq}")
        )
        prev = e.hash()
        out.append(e)
    return out


def _post(
    h: Harness, batch: Batch | bytes, key: SM2PrivateKey | None = None, node: str = NODE
) -> tuple[int, dict[str, str]]:
    body = batch if isinstance(batch, bytes) else json.dumps(batch.to_wire()).encode()
    status, payload, _ = h.hub_request("POST", PATH, body, node, key)
    return status, payload


def test_bad_batches_are_rejected_precisely(harness: Harness) -> None:
    stranger = SM2PrivateKey.generate()
    retired = SM2PrivateKey.generate()
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    harness.extra_keys[NODE].append(
        NodeKey.of(retired.public_key(), past, past + dt.timedelta(days=1))
    )
    harness.write_bundle()
    harness.start_collector()
    key = harness.node_keys[NODE]

    b1 = seal_batch(_events(1, 5, GENESIS_HASH), GENESIS_BATCH_HASH, key)
    b2 = seal_batch(_events(6, 5, b1.events[-1].hash()), b1.header.hash(), key)
    b3 = seal_batch(_events(11, 5, b2.events[-1].hash()), b2.header.hash(), key)

    # Forged: header claims the node's key id, signed by another key.
    forged = b1.model_copy(update={"signature": stranger.sign(b1.header.canonical())})
    assert _post(harness, forged) == (401, {"code": "bad_signature", "message": forged_msg(b1)})
    # A batch signed by a key that retired yesterday.
    assert (
        _post(harness, seal_batch(b1.events, GENESIS_BATCH_HASH, retired), key=key)[1]["code"]
        == "key_retired"
    )
    # Request signed by a key that is not the node's.
    assert _post(harness, b1, key=stranger)[1]["code"] == "unknown_key"
    # Unknown node.
    assert _post(harness, b1, key=stranger, node="edge-xx")[1]["code"] == "unknown_node"
    # Altered event under an intact header and signature.
    altered_events = [*b1.events]
    altered_events[2] = altered_events[2].model_copy(update={"subject": "tampered"})
    altered = b1.model_copy(update={"events": altered_events})
    status, body = _post(harness, altered)
    assert (status, body["code"]) == (400, "chain_broken"), body
    last = [*b1.events[:4], b1.events[4].model_copy(update={"subject": "tampered"})]
    status, body = _post(harness, b1.model_copy(update={"events": last}))
    assert (status, body["code"]) == (400, "merkle_root_mismatch"), body
    # Events reordered inside the batch.
    swapped = [b1.events[1], b1.events[0], *b1.events[2:]]
    assert _post(harness, b1.model_copy(update={"events": swapped}))[1]["code"] == (
        "seq_not_contiguous"
    )
    # Garbage bodies.
    for garbage in (b"", b"not json", b"[]", b'{"header": 1}', b"\xff\xfe", b"{" * 5000):
        status, body = _post(harness, garbage)
        assert status == 400 and body["code"] == "malformed_batch", (garbage[:10], body)
    # Reordered batches: b2 before b1 is a gap.
    status, body = _post(harness, b2)
    assert (status, body["code"]) == (409, "gap"), body
    assert "missing 1..5" in body["message"]
    assert harness.hub_last_seq(NODE) == 0, "a rejected batch was stored"

    # Now the good stream, with a replayed batch and a replayed request along the way.
    assert _post(harness, b1) == (200, {"ackedSeq": 5, "duplicate": False})
    assert _post(harness, b1) == (200, {"ackedSeq": 5, "duplicate": True})
    body_b2 = json.dumps(b2.to_wire()).encode()
    headers = sign_request("POST", PATH, body_b2, NODE, key)
    assert harness.hub_request("POST", PATH, body_b2, NODE, headers=headers)[0] == 200
    status, payload, _ = harness.hub_request("POST", PATH, body_b2, NODE, headers=headers)
    assert (status, payload["code"]) == (401, "replayed_nonce")
    # Stale timestamp.
    old = sign_request("POST", PATH, body_b2, NODE, key, now=time.time() - 600)
    assert harness.hub_request("POST", PATH, body_b2, NODE, headers=old)[1]["code"] == (
        "stale_timestamp"
    )
    # A fork: different events for seq 6..10.
    fork = seal_batch(_events(6, 5, b1.events[-1].hash()), b1.header.hash(), key)
    assert fork.header.hash() != b2.header.hash()
    status, body = _post(harness, fork)
    assert (status, body["code"]) == (409, "fork"), body
    # A batch that skips the stored batch head (right seq, wrong previous batch).
    wrong_prev = seal_batch(b3.events, GENESIS_BATCH_HASH, key)
    assert _post(harness, wrong_prev)[1]["code"] == "prev_batch_mismatch"
    assert _post(harness, b3)[0] == 200

    assert harness.hub_subjects(NODE) == [f"s{i}" for i in range(1, 16)]
    result = harness.audit_verify()
    assert result.returncode == 0, result.stdout + result.stderr

    def condition_reported() -> bool:
        if not harness.status_file.exists():
            return False
        lines = [json.loads(x) for x in harness.status_file.read_text().splitlines()]
        reasons = {
            x["reason"] for x in lines if x["type"] == "AuditStreaming" and x["status"] == "False"
        }
        return {"BadSignature", "Gap", "Fork", "MerkleRootMismatch"} <= reasons

    wait_for(condition_reported, 10, "AuditStreaming=False reasons in the status sink")


def forged_msg(b: Batch) -> str:
    return (
        f"SM2 signature of batch {b.header.first_seq}..{b.header.last_seq} "
        f"does not verify with key {b.header.key_id[:16]}"
    )
