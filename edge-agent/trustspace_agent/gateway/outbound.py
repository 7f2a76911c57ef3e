"""One transfer out (``POST /v1/transfers``): decide -> admit -> protect -> audit ->
deliver or hold, each step a function with its inputs and outputs in its signature.

Nothing moves before its audit events are durable (B4). A step that refuses raises
:class:`GatewayError`; :func:`post_transfer` records the refusal and counts it on the
caller's breaker when it looks like probing (B8).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any, NoReturn

from aiohttp import web

from trustspace import clock
from trustspace.audit.event import EventFields
from trustspace.crypto import SM2PrivateKey, SM2PublicKey, sm3
from trustspace.policy import (
    Decision,
    FieldProtection,
    PolicyEngine,
    TransferRequest,
    Verdict,
    desensitise,
)
from trustspace_agent.gateway.answers import GatewayError, rules, text
from trustspace_agent.gateway.breaker import Breaker
from trustspace_agent.gateway.callers import CallerRefused
from trustspace_agent.gateway.core import FRAME_OVERHEAD, Gateway
from trustspace_agent.gateway.dispatch import deliver, hold
from trustspace_agent.gateway.envelope import encode_frame, protect
from trustspace_agent.gateway.links import admit
from trustspace_agent.gateway.transfer_input import (
    InputError,
    TransferInput,
    parse_transfer,
    read_body,
)

#: Refusals that say the caller asked for something wrong (not: the gateway is unable).
PROBING = frozenset({"unknown_node", "opaque_payload", "desensitisation_failed"})


async def post_transfer(gw: Gateway, request: web.Request) -> web.Response:
    tid = "tr-" + secrets.token_hex(12)
    try:
        caller = await gw.identify(request, tid, "transfer.rejected")
    except (CallerRefused, GatewayError) as exc:
        return exc.response()
    caller_breaker = gw.board.get("caller", caller)
    try:
        engine = gw.engine()
        body = await read_body(request, gw.config.max_payload_bytes + FRAME_OVERHEAD)
        ctype = request.content_type
        item = parse_transfer(ctype, dict(request.headers), body, gw.node, set(engine.nodes))
        if item.size > gw.config.max_payload_bytes:
            raise InputError(
                413,
                "payload_too_large",
                f"payload of {item.size} bytes exceeds {gw.config.max_payload_bytes}",
                "payload",
            )
        return await transfer(gw, engine, item, tid, caller)
    except (InputError, GatewayError) as exc:
        if not exc.audited:
            await gw.record_refusal(caller, tid, exc, "transfer.rejected")
        if isinstance(exc, InputError) or exc.code in PROBING:
            # Malformed or forbidden requests in a burst are probing (B8).
            await gw.on_trip(caller_breaker.record_denied(time.time()), caller)
        return exc.response()


async def transfer(
    gw: Gateway, engine: PolicyEngine, item: TransferInput, tid: str, caller: str
) -> web.Response:
    """The steps in order; the caller's request is parsed and within the size limit."""
    decision, records_bytes, size = decide(engine, item, gw.config.max_payload_bytes)
    now = time.time()
    link, caller_b, probing = admit(
        gw.board, gw.settings_for(engine, decision), item.link, caller, now
    )
    base: dict[str, Any] = {
        "actor": caller,
        "subject": tid,
        "ruleIds": rules(decision),
        "policyVersion": decision.bundle_version,
        "classification": item.classification,
    }
    original = records_bytes if records_bytes is not None else item.data or b""
    original_digest = sm3(original).hex()
    requested = requested_event(base, item, original_digest, size)
    if decision.verdict == Verdict.DENY:
        await refuse_denied(gw, tid, base, requested, decision, (link, caller_b), probing, now)
    try:
        gw.check_rate(item.link, decision.max_transfers_per_minute)
        core, core_bytes, sealed, protected_fields = protect_transfer(
            tid,
            item,
            decision,
            records_bytes,
            original,
            original_digest,
            gw.pseudonym_key,
            gw.peer_key,
            gw.own_key,
        )
    except GatewayError:
        for b in probing:
            b.probing = False
        raise
    try:
        await gw.record(audit_events(base, requested, decision, core, protected_fields))
    except GatewayError:
        for b in probing:
            b.probing = False
        raise
    if decision.verdict == Verdict.REVIEW:
        return await hold(gw, tid, item, core, core_bytes, sealed, decision, caller, probing)
    frame = encode_frame(core_bytes, [], sealed)
    return await deliver(gw, tid, item.destination, item.link, frame, core, caller, probing)


def decide(
    engine: PolicyEngine, item: TransferInput, max_bytes: int
) -> tuple[Decision, bytes | None, int]:
    """The policy's decision on this transfer, the records as they would be sent (compact
    JSON, None for bytes) and the size decided on; InputError when records exceed
    ``max_bytes``."""
    size = item.size if item.records is None else 0
    records_bytes = None
    if item.records is not None:
        records_bytes = json.dumps(item.records, separators=(",", ":")).encode()
        size = len(records_bytes)
        if size > max_bytes:
            raise InputError(
                413,
                "payload_too_large",
                f"records of {size} bytes exceed {max_bytes}",
                "records",
            )
    decision = engine.decide(
        TransferRequest(
            item.source,
            item.destination,
            item.classification,
            frozenset(item.categories),
            item.purpose,
            size,
            frozenset(item.certifications),
        )
    )
    return decision, records_bytes, size


def requested_event(
    base: dict[str, Any], item: TransferInput, digest: str, size: int
) -> EventFields:
    return EventFields(
        **base,
        action="transfer.requested",
        payloadDigest=digest,
        detail=text(
            {
                "link": item.link,
                "destination": item.destination,
                "categories": list(item.categories),
                "purpose": item.purpose,
                "size": size,
            }
        )[:1024],
    )


async def refuse_denied(
    gw: Gateway,
    tid: str,
    base: dict[str, Any],
    requested: EventFields,
    decision: Decision,
    breakers: tuple[Breaker, Breaker],
    probing: list[Breaker],
    now: float,
) -> NoReturn:
    """A denied transfer: audit requested + denied, count the denial on the link and the
    caller (``breakers``), then raise the 403 (already audited)."""
    await gw.record(
        [
            requested,
            EventFields(
                **base,
                action="transfer.denied",
                decision="deny",
                detail=decision.reason[:1024],
            ),
        ]
    )
    link, caller_b = breakers
    trips = [link.record_denied(now), caller_b.record_denied(now)]
    for b in probing:
        trips.append(b.finish_probe(False, now))
    for trip in trips:
        await gw.on_trip(trip, base["actor"])
    denied = GatewayError(
        403, "denied", decision.reason, id=tid, matched=[str(m) for m in decision.matched]
    )
    denied.audited = True  # requested + denied are recorded, breakers counted
    raise denied


def protect_transfer(
    tid: str,
    item: TransferInput,
    decision: Decision,
    records_bytes: bytes | None,
    original: bytes,
    original_digest: str,
    pseudonym_key: Callable[[str], Callable[[FieldProtection], bytes]],
    peer_key: Callable[[str], SM2PublicKey],
    own_key: Callable[[], SM2PrivateKey],
) -> tuple[dict[str, Any], bytes, bytes, list[dict[str, str]]]:
    """Desensitise (B6) and seal for the destination (B3): the frame's core, its canonical
    bytes, the ciphertext and the protections applied. The destination's key is looked up
    after desensitising, so a caller's mistake in its records is the refusal it sees."""
    plaintext, kind, protected_fields = desensitised(item, decision, records_bytes, pseudonym_key)
    core: dict[str, Any] = {
        "v": 1,
        "id": tid,
        "source": item.source,
        "destination": item.destination,
        "link": item.link,
        "classification": item.classification,
        "categories": sorted(item.categories),
        "purpose": item.purpose,
        "dataset": item.dataset,
        "payloadKind": kind,
        # Unchanged by desensitisation (the usual case): the digest is already known.
        "payloadDigest": (original_digest if plaintext == original else sm3(plaintext).hex()),
        "size": len(plaintext),
        "desensitised": protected_fields,
        "decision": {
            "verdict": decision.verdict.value,
            "channel": decision.channel,
            "rules": rules(decision),
            "bundleVersion": decision.bundle_version,
            "bundleHash": decision.bundle_hash,
        },
        "approvalGroups": [a.to_dict() for a in decision.approvals],
        "createdAt": clock.rfc3339(),
        "salt": secrets.token_hex(16),
    }
    core = {k: v for k, v in core.items() if v is not None}
    peer = peer_key(item.destination)
    mine = own_key()
    core["senderKeyId"], core["recipientKeyId"] = mine.key_id, peer.key_id
    core_bytes, sealed = protect(core, plaintext, mine, peer)
    return core, core_bytes, sealed, protected_fields


def desensitised(
    item: TransferInput,
    decision: Decision,
    records_bytes: bytes | None,
    pseudonym_key: Callable[[str], Callable[[FieldProtection], bytes]],
) -> tuple[bytes, str, list[dict[str, str]]]:
    """The payload as it may leave (B6), its kind (``bytes``/``records``) and the
    protections applied; bytes cannot be desensitised, so a policy that asks refuses them."""
    fields = [{"field": p.field, "method": p.method} for p in decision.desensitisation]
    if item.records is None:
        if decision.desensitisation:
            raise GatewayError(
                422,
                "opaque_payload",
                "the policy desensitises fields "
                + ", ".join(f["field"] for f in fields)
                + "; send records (JSON), not bytes",
                "payloadBase64",
            )
        return item.data or b"", "bytes", fields
    if not decision.desensitisation:
        assert records_bytes is not None
        return records_bytes, "records", fields
    key_for = pseudonym_key(item.link)
    try:
        out = [desensitise(r, decision.desensitisation, key_for) for r in item.records]
    except ValueError as exc:
        raise GatewayError(422, "desensitisation_failed", str(exc), "records") from None
    return json.dumps(out, separators=(",", ":")).encode(), "records", fields


def audit_events(
    base: dict[str, Any],
    requested: EventFields,
    decision: Decision,
    core: dict[str, Any],
    protected_fields: list[dict[str, str]],
) -> list[EventFields]:
    """The events recorded, durably and together, before a transfer is delivered or held:
    requested, the decision (allowed or queued) and protected."""
    verdict = "transfer.allowed" if decision.verdict == Verdict.ALLOW else "transfer.queued"
    protected = EventFields(
        **base,
        action="transfer.protected",
        payloadDigest=core["payloadDigest"],
        detail=text(
            {
                "encryption": "SM4-GCM",
                "keyAgreement": "SM2-static-DH+SM3-KDF",
                "signature": "SM2",
                "desensitised": protected_fields,
            }
        )[:1024],
    )
    decided = EventFields(
        **base, action=verdict, decision=decision.verdict.value, detail=decision.reason[:1024]
    )
    return [requested, decided, protected]
