"""Transfers to one peer that queue up travel in batches under one SM2 signature
(``trustspace_agent.gateway.batchwire``): every transfer still arrives, answered and audited on its
own, with evidence that can be checked on its own; a batch whose frames do not match its
signed manifest is refused whole."""

from __future__ import annotations

import base64
import json
import sqlite3
import ssl
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from support.gateway_harness import GatewayHarness
from trustspace.audit.auth import sign_request, signing_input
from trustspace.crypto import sm3
from trustspace_agent.gateway import batchwire

BURST = 48


def post_batch(h: GatewayHarness, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    ctx = ssl.create_default_context(cafile=str(h.ca))
    req = urllib.request.Request(
        f"https://127.0.0.1:{h.inbound_ports['cn-nanning']}{batchwire.BATCH_PATH}",
        data=body,
        method="POST",
        headers={**headers, "Content-Type": batchwire.BATCH_TYPE},
    )
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_burst_travels_in_batches_and_each_transfer_stands_alone(pair: GatewayHarness) -> None:
    def send(i: int) -> tuple[int, Any]:
        return pair.transfer(
            "vn-hanoi", "cn-nanning", "internal", ["logistics"], [{"container": f"C{i}"}]
        )

    with ThreadPoolExecutor(BURST) as pool:
        answers = list(pool.map(send, range(BURST)))
    assert [s for s, _ in answers] == [201] * BURST, answers
    db = pair.root / "cn-nanning" / "gateway" / "inbox.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = {
            tid: (json.loads(evidence), payload)
            for tid, evidence, payload in conn.execute("SELECT id, evidence, payload FROM inbox")
        }
        manifests = dict(conn.execute("SELECT digest, body FROM manifests").fetchall())
    ids = [a["id"] for _, a in answers]
    assert set(ids) <= set(rows)
    used = {rows[t][0]["bodyDigest"] for t in ids}
    assert len(used) < BURST, "no two transfers shared a batch"
    assert any(rows[t][0]["batchIndex"] > 0 for t in ids)

    # Any one transfer's evidence verifies without the other frames of its batch: the
    # source's SM2 signature covers the manifest, the manifest lists this frame's digest.
    public = pair.node_keys["vn-hanoi"].public_key()
    for tid in ids:
        evidence, payload = rows[tid]
        manifest = manifests[evidence["bodyDigest"]]
        assert sm3(manifest).hex() == evidence["bodyDigest"]
        entry = json.loads(manifest)["frames"][evidence["batchIndex"]]
        assert entry["digest"] == evidence["frameDigest"]
        public.verify(
            signing_input(
                "POST", evidence["path"], evidence["timestamp"], evidence["nonce"], manifest
            ),
            base64.b64decode(evidence["signature"]),
        )
        assert json.loads(payload)[0]["container"].startswith("C")
    # Audited on both sides, one event per transfer and step.
    for tid in ids[:5]:
        assert pair.audit_actions("vn-hanoi", tid)[-1] == "transfer.delivered"
        assert pair.audit_actions("cn-nanning", tid) == ["transfer.received"]


def test_frames_that_do_not_match_the_signed_manifest_are_refused(pair: GatewayHarness) -> None:
    key = pair.node_keys["vn-hanoi"]
    manifest, body = batchwire.encode_batch([b"TSX1-first", b"TSX1-second"])
    tampered = body[:-1] + b"!"
    headers = sign_request("POST", batchwire.BATCH_PATH, manifest, "vn-hanoi", key)
    status, answer = post_batch(pair, tampered, headers)
    assert (status, answer["code"], answer["field"]) == (400, "malformed_batch", "batch")
    # A frame smuggled in after the signed ones is refused the same way.
    headers = sign_request("POST", batchwire.BATCH_PATH, manifest, "vn-hanoi", key)
    status, answer = post_batch(pair, body + b"TSX1-extra", headers)
    assert (status, answer["code"]) == (400, "malformed_batch")
    # A signature over another manifest does not verify.
    headers = sign_request("POST", batchwire.BATCH_PATH, b"{}", "vn-hanoi", key)
    status, answer = post_batch(pair, body, headers)
    assert (status, answer["code"]) == (401, "bad_signature")
    refused = [
        json.loads(e["detail"])["code"]
        for e in pair.audit_events("cn-nanning").values()
        if e["action"] == "transfer.rejected" and e["actor"] == "vn-hanoi"
    ]
    assert refused[-3:] == ["malformed_batch", "malformed_batch", "bad_signature"]


def test_each_frame_of_a_batch_gets_its_own_answer(pair: GatewayHarness) -> None:
    key = pair.node_keys["vn-hanoi"]
    manifest, body = batchwire.encode_batch([b"TSX1", b"not a frame"])
    headers = sign_request("POST", batchwire.BATCH_PATH, manifest, "vn-hanoi", key)
    status, answer = post_batch(pair, body, headers)
    assert status == 200
    assert [(r["status"], r["body"]["code"]) for r in answer["results"]] == [
        (400, "malformed_frame"),
        (400, "malformed_frame"),
    ]
