"""Frames received from a peer gateway (``POST /v1/inbound`` and batches on the HTTPS port).

Verify the sender's SM2 request signature against the trust bundle, decide again with this
node's own certifications, check protections and the signed approvals of a reviewed
transfer, admit on the breakers, decrypt; then audit every accepted frame in one durable
append before anything is stored or answered.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from trustspace import clock
from trustspace.audit import auth
from trustspace.audit.event import EventFields
from trustspace.crypto import (
    CryptoError,
    DecryptionError,
    InvalidSignature,
    SM2PrivateKey,
    SM2PublicKey,
    sm3,
)
from trustspace.policy import Decision, PolicyEngine, TransferRequest, Verdict
from trustspace.trust import TrustError
from trustspace_agent.gateway import batchwire
from trustspace_agent.gateway.answers import GatewayError, json_response, rules, text
from trustspace_agent.gateway.approvals import (
    ApprovalError,
    ApproverKeys,
    progress,
    verify_approval,
)
from trustspace_agent.gateway.breaker import Breaker
from trustspace_agent.gateway.core import FRAME_OVERHEAD, Gateway
from trustspace_agent.gateway.delivery import FRAME_TYPE
from trustspace_agent.gateway.envelope import EnvelopeError, Frame, decode_frame, open_sealed
from trustspace_agent.gateway.links import admit
from trustspace_agent.gateway.transfer_input import InputError, read_body


@dataclass
class Accepted:
    """An inbound frame that passed every check, decrypted, not yet audited or stored."""

    tid: str
    frame: Frame
    decision: Decision
    link_name: str
    link: Breaker
    probing: list[Breaker]
    plaintext: bytes


async def post_inbound(gw: Gateway, request: web.Request) -> web.Response:
    """One frame, signed on its own (peers without batching, and tests)."""
    sender = request.headers.get(auth.H_NODE, "?")[:253] or "?"
    try:
        body = await read_body(request, gw.config.max_payload_bytes + FRAME_OVERHEAD)
        if request.content_type != FRAME_TYPE:
            raise GatewayError(
                415, "unsupported_media_type", "expected a transfer frame", "Content-Type"
            )
        engine = gw.engine()
        node, key = await authenticate_sender(gw, request, body, engine, sender)
        evidence = signature_evidence(request, sm3(body).hex())
        status, answer = (await receive(gw, engine, node, key, [body], [evidence]))[0]
        return json_response(answer, status=status)
    except (InputError, GatewayError) as exc:
        err = exc
    await gw.record_refusal(sender, "inbound-" + secrets.token_hex(8), err, "transfer.rejected")
    return err.response()


async def post_inbound_batch(gw: Gateway, request: web.Request) -> web.Response:
    """Frames under one signature (:mod:`trustspace_agent.batchwire`): one answer each,
    ``{"results": [{"status", "body"}, ...]}`` in the order of the manifest."""
    sender = request.headers.get(auth.H_NODE, "?")[:253] or "?"
    try:
        limit = max(gw.config.max_payload_bytes, batchwire.MAX_BYTES) + FRAME_OVERHEAD
        body = await read_body(request, limit)
        if request.content_type != batchwire.BATCH_TYPE:
            raise GatewayError(
                415, "unsupported_media_type", "expected a transfer batch", "Content-Type"
            )
        engine = gw.engine()
        try:
            manifest, _ = batchwire.split_manifest(body)
        except EnvelopeError as exc:
            raise GatewayError(400, "malformed_batch", str(exc), exc.field) from None
        node, key = await authenticate_sender(gw, request, manifest, engine, sender)
        try:
            batch = batchwire.open_batch(body)
        except EnvelopeError as exc:
            raise GatewayError(400, "malformed_batch", str(exc), exc.field) from None
        base = signature_evidence(request, sm3(manifest).hex())
        evidence = [
            {**base, "batchIndex": i, "frameDigest": d} for i, d in enumerate(batch.digests)
        ]
        results = await receive(gw, engine, node, key, batch.frames, evidence, manifest)
    except (InputError, GatewayError) as exc:
        err = exc
    else:
        return json_response(
            {"results": [{"status": s, "body": b} for s, b in results]}, status=200
        )
    await gw.record_refusal(sender, "inbound-" + secrets.token_hex(8), err, "transfer.rejected")
    return err.response()


def signature_evidence(request: web.Request, signed_digest: str) -> dict[str, Any]:
    h = request.headers
    return {
        "keyId": h[auth.H_KEY_ID],
        "timestamp": h[auth.H_TIMESTAMP],
        "nonce": h[auth.H_NONCE],
        "signature": h[auth.H_SIGNATURE],
        "bodyDigest": signed_digest,
        "path": request.path_qs,
    }


async def authenticate_sender(
    gw: Gateway, request: web.Request, signed: bytes, engine: PolicyEngine, sender: str
) -> tuple[str, SM2PublicKey]:
    try:
        return authenticate(gw, request, signed)
    except GatewayError as exc:
        if exc.code == "bad_signature" and sender in engine.nodes:
            now = time.time()
            for kind, name in (("link", f"{sender}-to-{gw.node}"), ("caller", sender)):
                await gw.on_trip(gw.board.get(kind, name).record_invalid_signature(now), sender)
        raise


def authenticate(gw: Gateway, request: web.Request, signed: bytes) -> tuple[str, SM2PublicKey]:
    """The sender and its key, from the SM2 request signature over ``signed`` (the body,
    or a batch's manifest)."""
    h = request.headers
    node, key_id = h.get(auth.H_NODE), h.get(auth.H_KEY_ID)
    ts, nonce, sig = h.get(auth.H_TIMESTAMP), h.get(auth.H_NONCE), h.get(auth.H_SIGNATURE)
    if not (node and key_id and ts and nonce and sig):
        raise GatewayError(401, "missing_auth", "request is not signed (X-Trustspace-*)")
    now = time.time()
    if not ts.isdigit() or abs(now - int(ts)) > auth.MAX_SKEW_SECONDS:
        raise GatewayError(401, "stale_timestamp", "request timestamp is over 5 minutes off")
    try:
        key = gw.node_key((node, key_id))
    except TrustError as exc:
        raise GatewayError(403, exc.code, exc.message) from None
    try:
        key.verify(
            auth.signing_input("POST", request.path_qs, ts, nonce, signed),
            base64.b64decode(sig, validate=True),
        )
    except (InvalidSignature, CryptoError, binascii.Error, ValueError):
        raise GatewayError(
            401,
            "bad_signature",
            "SM2 request signature does not verify",
            "X-Trustspace-Signature",
        ) from None
    if not gw.nonces.check_and_add(f"{node}:{nonce}", now):
        raise GatewayError(401, "replayed_nonce", "this request was already received")
    return node, key


async def receive(
    gw: Gateway,
    engine: PolicyEngine,
    node: str,
    sender_key: SM2PublicKey,
    frames: list[bytes],
    evidence: list[dict[str, Any]],
    manifest: bytes | None = None,
) -> list[tuple[int, dict[str, Any]]]:
    """Check, audit and store authenticated frames; (status, answer) for each. The
    ``transfer.received`` events of all accepted frames are one durable append, made
    before anything is stored or answered."""
    now = time.time()
    results: list[tuple[int, dict[str, Any]] | None] = [None] * len(frames)
    accepted: list[tuple[int, Accepted]] = []
    for i, raw in enumerate(frames):
        try:
            accepted.append((i, await accept(gw, engine, raw, node, sender_key, now)))
        except GatewayError as exc:
            subject = exc.extra.get("id") or "inbound-" + secrets.token_hex(8)
            await gw.record_refusal(node, subject, exc, "transfer.rejected")
            results[i] = (exc.status, exc.body())
    if accepted:
        try:
            await gw.record(
                [
                    EventFields(
                        actor=node,
                        action="transfer.received",
                        subject=a.tid,
                        decision=a.decision.verdict.value,
                        ruleIds=rules(a.decision),
                        policyVersion=a.decision.bundle_version,
                        classification=str(a.frame.core["classification"]),
                        payloadDigest=str(a.frame.core["payloadDigest"]),
                        detail=text(
                            {
                                "link": a.link_name,
                                "approvals": len(a.frame.approvals),
                                "signature": evidence[i]["signature"][:120],
                                **(
                                    {"batchIndex": i, "manifest": evidence[i]["bodyDigest"]}
                                    if manifest is not None
                                    else {}
                                ),
                            }
                        )[:1024],
                    )
                    for i, a in accepted
                ]
            )
        except GatewayError as exc:
            for i, a in accepted:
                await gw.record_refusal(node, a.tid, exc, "transfer.rejected")
                results[i] = (exc.status, exc.body())
            accepted = []
    if accepted:
        rows = [
            (a.frame.core, a.frame.core_bytes, a.frame.approvals, evidence[i], a.plaintext)
            for i, a in accepted
        ]
        fresh = await gw.inbox.call(lambda s: s.add_many(rows, manifest))
        received_at = clock.rfc3339()
        for (i, a), new in zip(accepted, fresh, strict=True):
            for b in a.probing:
                b.finish_probe(True, now)
            if new:
                await gw.on_trip(a.link.record_transfer(now, len(a.plaintext)), node)
            results[i] = (
                201 if new else 200,
                {
                    "id": a.tid,
                    "receivedBy": gw.node,
                    "receivedAt": received_at,
                    "payloadDigest": a.frame.core["payloadDigest"],
                    "duplicate": not new,
                },
            )
    return [r for r in results if r is not None]


async def accept(
    gw: Gateway, engine: PolicyEngine, raw: bytes, node: str, sender_key: SM2PublicKey, now: float
) -> Accepted:
    """One frame from an authenticated ``node``: decide again here, check protections,
    approvals and breakers, decrypt; GatewayError (breakers counted) if anything is off."""
    try:
        frame = decode_frame(raw)
    except EnvelopeError as exc:
        raise GatewayError(400, "malformed_frame", str(exc), exc.field) from None
    core = frame.core
    tid = str(core.get("id", ""))
    if not tid.startswith("tr-") or len(tid) > 64:
        raise GatewayError(400, "malformed_frame", "frame has no transfer id", "core.id")
    if core.get("source") != node:
        raise GatewayError(
            403,
            "node_mismatch",
            f"{node} signed a frame from {core.get('source')!r}",
            "core.source",
            id=tid,
        )
    if core.get("destination") != gw.node:
        raise GatewayError(
            421,
            "wrong_destination",
            f"frame is for {core.get('destination')!r}, this is {gw.node}",
            "core.destination",
            id=tid,
        )
    link_name = str(core.get("link", f"{node}-to-{gw.node}"))
    try:
        decision = engine.decide(
            TransferRequest.of(
                node,
                gw.node,
                str(core.get("classification")),
                core.get("categories", []),
                payload_size=int(core.get("size", 0)),
                recipient_certifications=gw.config.certifications,
            )
        )
    except (ValueError, TypeError):
        raise GatewayError(
            400,
            "malformed_frame",
            "bad classification or categories",
            "core.classification",
            id=tid,
        ) from None
    try:
        link, _, probing = admit(gw.board, gw.settings_for(engine, decision), link_name, node, now)
    except GatewayError as err:
        err.extra["id"] = tid
        raise
    try:
        plaintext = checked_payload(frame, decision, tid, sender_key, gw.approvers, gw.own_key)
    except GatewayError as exc:
        for b in probing:
            await gw.on_trip(b.finish_probe(False, now), node)
        if exc.code in ("inbound_denied", "approvals_missing", "protections_missing"):
            await gw.on_trip(link.record_denied(now), node)
        if exc.code in ("bad_approval_signature", "decryption_failed"):
            await gw.on_trip(link.record_invalid_signature(now), node)
        raise
    return Accepted(tid, frame, decision, link_name, link, probing, plaintext)


def checked_payload(
    frame: Frame,
    decision: Decision,
    tid: str,
    sender_key: SM2PublicKey,
    approvers: ApproverKeys,
    own_key: Callable[[], SM2PrivateKey],
) -> bytes:
    """The decrypted payload of a frame this node's decision lets in: protections applied,
    approvals enough and signed, encrypted for this node's current key, digest matching."""
    core = frame.core
    if decision.verdict == Verdict.DENY:
        raise GatewayError(403, "inbound_denied", decision.reason, id=tid)
    required = {(p.field, p.method) for p in decision.desensitisation}
    applied = {
        (d.get("field"), d.get("method"))
        for d in core.get("desensitised", [])
        if isinstance(d, dict)
    }
    missing = sorted(f for f, _ in required - applied)
    if missing:
        raise GatewayError(
            403,
            "protections_missing",
            "not desensitised as required: " + ", ".join(missing),
            id=tid,
        )
    if decision.verdict == Verdict.REVIEW:
        groups = [a.to_dict() for a in decision.approvals]
        checked = []
        for approval in frame.approvals:
            try:
                checked.append(
                    verify_approval(approval, tid, str(core["payloadDigest"]), groups, approvers)
                )
            except ApprovalError as exc:
                raise GatewayError(
                    exc.status if exc.status != 401 else 403,
                    "bad_approval_signature" if exc.status == 401 else exc.code,
                    exc.message,
                    id=tid,
                ) from None
        p = progress(groups, checked)
        if not p.met:
            raise GatewayError(
                403,
                "approvals_missing",
                f"review transfer without the approvals its groups need: {json.dumps(p.summary)}"[
                    :1000
                ],
                id=tid,
            )
    mine = own_key()
    if core.get("recipientKeyId") != mine.key_id:
        raise GatewayError(
            409, "stale_recipient_key", "encrypted for another key of this node", id=tid
        )
    try:
        plaintext = open_sealed(frame, mine, sender_key)
    except (DecryptionError, KeyError) as exc:
        raise GatewayError(400, "decryption_failed", str(exc), id=tid) from None
    if sm3(plaintext).hex() != core.get("payloadDigest"):
        raise GatewayError(400, "digest_mismatch", "payload digest does not match", id=tid)
    return plaintext
