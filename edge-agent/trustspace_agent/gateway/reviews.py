"""Transfers held for review (B5, B7) on the local API: list and read them, take signed
approvals, and release one to its destination once every approval group is met; the
sweep expires those past their timeout and retries approved ones not yet delivered."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from aiohttp import web

from trustspace.audit.event import EventFields
from trustspace_agent.gateway.answers import GatewayError, json_response
from trustspace_agent.gateway.approvals import ApprovalError, progress, verify_approval
from trustspace_agent.gateway.core import Gateway
from trustspace_agent.gateway.dispatch import deliver
from trustspace_agent.gateway.envelope import encode_frame
from trustspace_agent.gateway.held_store import DELIVERED, EXPIRED, HELD, REJECTED
from trustspace_agent.gateway.transfer_input import read_body

log = logging.getLogger(__name__)


async def list_reviews(gw: Gateway, request: web.Request) -> web.Response:
    state = request.query.get("state")
    items = await gw.reviews.call(lambda s: s.items(state))
    return json_response({"items": [h.view() for h in items]})


async def get_review(gw: Gateway, request: web.Request) -> web.Response:
    tid = request.match_info["id"]
    held = await gw.reviews.call(lambda s: s.get(tid))
    if held is None:
        return GatewayError(404, "not_found", f"no held transfer {tid}").response()
    return json_response(held.view())


async def post_approval(gw: Gateway, request: web.Request) -> web.Response:
    tid = request.match_info["id"]
    actor = "approver"
    try:
        if request.content_type != "application/json":
            raise GatewayError(415, "unsupported_media_type", "approvals are JSON", "Content-Type")
        try:
            approval = json.loads(await read_body(request, 64 * 1024))
        except ValueError:
            raise GatewayError(400, "malformed_json", "body is not JSON", "body") from None
        if isinstance(approval, dict) and isinstance(approval.get("approver"), str):
            actor = approval["approver"][:253] or actor
        held = await gw.reviews.call(lambda s: s.get(tid))
        if held is None:
            raise GatewayError(404, "not_found", f"no held transfer {tid}")
        if held.state == EXPIRED:
            raise GatewayError(410, "expired", f"transfer {tid} expired unapproved")
        if held.state != HELD:
            raise GatewayError(409, "not_held", f"transfer {tid} is {held.state}")
        if time.time() >= held.expires:
            raise GatewayError(410, "expired", f"transfer {tid} expired unapproved")
        try:
            checked = verify_approval(
                approval, tid, held.meta["payloadDigest"], held.meta["groups"], gw.approvers
            )
        except ApprovalError as exc:
            if exc.code == "bad_approval_signature":
                link = gw.board.get("link", held.meta["link"])
                await gw.on_trip(link.record_invalid_signature(time.time()), actor)
            raise
        if any(a["approver"] == checked["approver"] for a in held.approvals):
            raise GatewayError(
                409,
                "duplicate_approval",
                f"{checked['approver']} already decided on {tid}",
                "approver",
            )
    except (ApprovalError, GatewayError) as exc:
        await gw.record_refusal(actor, tid, exc, "transfer.approval_refused")
        return exc.response()
    action = "transfer.approved" if checked["decision"] == "approve" else "transfer.vetoed"
    try:
        await gw.record(
            [
                EventFields(
                    actor=checked["approver"],
                    action=action,
                    subject=tid,
                    decision=checked["decision"],
                    classification=held.meta["classification"],
                    payloadDigest=held.meta["payloadDigest"],
                    detail=json.dumps(
                        {
                            "keyId": checked["keyId"],
                            "signature": checked["signature"],
                            "signedAt": checked["signedAt"],
                        }
                    )[:1024],
                )
            ]
        )
    except GatewayError as exc:
        return exc.response()
    approvals = [*held.approvals, checked]
    await gw.reviews.call(lambda s: s.set_approvals(tid, approvals))
    p = progress(held.meta["groups"], approvals)
    if p.failed:
        await finish(gw, tid, held.meta, REJECTED, p.failed, checked["approver"])
        return json_response(
            {"id": tid, "state": REJECTED, "reason": p.failed, "groups": p.summary}
        )
    if not p.met:
        return json_response({"id": tid, "state": HELD, "groups": p.summary})
    try:
        return await release(gw, tid)
    except GatewayError as exc:
        return exc.response()


async def finish(
    gw: Gateway, tid: str, meta: dict[str, Any], state: str, reason: str, actor: str
) -> None:
    action = {REJECTED: "transfer.rejected", EXPIRED: "transfer.expired"}.get(state)
    if action:
        await gw.record(
            [
                EventFields(
                    actor=actor,
                    action=action,
                    subject=tid,
                    decision=state.lower(),
                    detail=reason[:1024],
                    classification=meta["classification"],
                )
            ]
        )
    await gw.reviews.call(lambda s: s.finish(tid, state, reason))
    link = gw.board.get("link", meta["link"])
    link.in_review = max(0, link.in_review - 1)


async def release(gw: Gateway, tid: str) -> web.Response:
    """Deliver a held transfer whose every approval group is met."""
    if tid in gw.delivering:
        raise GatewayError(409, "in_flight", f"transfer {tid} is being delivered")
    gw.delivering.add(tid)
    try:
        held = await gw.reviews.call(lambda s: s.get(tid))
        assert held is not None and held.core is not None and held.sealed is not None
        frame = encode_frame(held.core, held.approvals, held.sealed)
        core = json.loads(held.core)
        response = await deliver(
            gw, tid, held.meta["destination"], held.meta["link"], frame, core, "gateway", []
        )
        await finish(gw, tid, held.meta, DELIVERED, "every approval group met", "gateway")
        return response
    finally:
        gw.delivering.discard(tid)


async def sweep(gw: Gateway) -> None:
    """Expire held transfers past their timeout; retry approved ones that failed."""
    while True:
        await asyncio.sleep(gw.config.review_sweep_seconds)
        try:
            due = await gw.reviews.call(lambda s: s.due(time.time()))
            for tid in due:
                held = await gw.reviews.call(lambda s, t=tid: s.get(t))  # type: ignore[misc]
                if held is not None and held.state == HELD:
                    await finish(gw, tid, held.meta, EXPIRED, "approval timeout passed", "gateway")
            for held in await gw.reviews.call(lambda s: s.items(HELD)):
                if progress(held.meta["groups"], held.approvals).met:
                    try:
                        await release(gw, held.id)
                    except GatewayError as exc:
                        log.warning(
                            "approved transfer %s still undelivered: %s", held.id, exc.message
                        )
        except Exception:
            log.exception("review sweep failed")
