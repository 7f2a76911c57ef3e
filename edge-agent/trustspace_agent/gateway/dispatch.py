"""The last outbound step, after the transfer's events are durable: deliver it to the
destination gateway (allow) or hold it here for review (B5, B7); each is audited."""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from trustspace.audit.event import EventFields
from trustspace.policy import Decision
from trustspace_agent.gateway.answers import GatewayError, json_response, text
from trustspace_agent.gateway.approvals import progress
from trustspace_agent.gateway.breaker import Breaker
from trustspace_agent.gateway.core import Gateway
from trustspace_agent.gateway.delivery import Outcome
from trustspace_agent.gateway.held_store import HELD
from trustspace_agent.gateway.transfer_input import TransferInput

#: A review group without a readable timeout waits this long.
_DEFAULT_TIMEOUT = 72 * 3600.0


def timeout_seconds(text: str) -> float:
    from trustspace.api.common import parse_duration

    try:
        return parse_duration(text).total_seconds()
    except ValueError:
        return _DEFAULT_TIMEOUT


async def deliver(
    gw: Gateway,
    tid: str,
    destination: str,
    link_name: str,
    frame: bytes,
    core: dict[str, Any],
    actor: str,
    probing: list[Breaker],
) -> web.Response:
    """Send the frame to the destination and audit the outcome: 201 with its receipt, or
    GatewayError 504 (unreachable) / 502 (refused)."""
    url = gw.config.peers.get(destination)
    outcome = (
        await gw.peers.deliver(url, frame)
        if url
        else Outcome(0, {"code": "no_route", "message": f"no gateway URL for {destination}"})
    )
    now = time.time()
    link = gw.board.get("link", link_name)
    base = {
        "actor": actor,
        "subject": tid,
        "classification": core["classification"],
        "payloadDigest": core["payloadDigest"],
    }
    if outcome.delivered:
        await gw.record(
            [
                EventFields(
                    **base,
                    action="transfer.delivered",
                    decision="delivered",
                    detail=text({"destination": destination, "receipt": outcome.body})[:1024],
                )
            ]
        )
        trips = [link.record_transfer(now, core["size"])]
        caller = gw.board.breakers.get(("caller", actor))
        if caller is not None:
            caller.record_transfer(now, core["size"])
        for b in probing:
            b.finish_probe(True, now)
        for trip in trips:
            await gw.on_trip(trip, actor)
        return json_response(
            {
                "id": tid,
                "state": "Delivered",
                "destination": destination,
                "payloadDigest": core["payloadDigest"],
                "receipt": outcome.body,
            },
            status=201,
        )
    for b in probing:
        await gw.on_trip(b.finish_probe(False, now), actor)
    await gw.record(
        [
            EventFields(
                **base,
                action="transfer.failed",
                decision="undelivered",
                detail=json.dumps(
                    {
                        "destination": destination,
                        "status": outcome.status,
                        "answer": outcome.body,
                    }
                )[:1024],
            )
        ]
    )
    status = 504 if outcome.status == 0 else 502
    code = "destination_unreachable" if outcome.status == 0 else "destination_refused"
    raise GatewayError(
        status,
        code,
        f"{destination}: {outcome.body.get('message', '')}",
        id=tid,
        destinationStatus=outcome.status,
        destinationCode=outcome.body.get("code"),
    )


async def hold(
    gw: Gateway,
    tid: str,
    item: TransferInput,
    core: dict[str, Any],
    core_bytes: bytes,
    sealed: bytes,
    decision: Decision,
    caller: str,
    probing: list[Breaker],
) -> web.Response:
    """Keep the protected transfer here until its approval groups are met (202); it expires
    at the first group's timeout."""
    groups = core["approvalGroups"]
    timeout = min((timeout_seconds(g["timeout"]) for g in groups), default=_DEFAULT_TIMEOUT)
    meta = {
        "link": item.link,
        "source": item.source,
        "destination": item.destination,
        "classification": item.classification,
        "categories": list(item.categories),
        "purpose": item.purpose,
        "caller": caller,
        "payloadDigest": core["payloadDigest"],
        "size": core["size"],
        "reason": decision.reason,
        "groups": groups,
    }
    await gw.reviews.call(lambda s: s.add(tid, time.time() + timeout, meta, core_bytes, sealed))
    gw.board.get("link", item.link).in_review += 1
    for b in probing:
        b.finish_probe(True, time.time())
    return json_response(
        {
            "id": tid,
            "state": HELD,
            "channel": "review",
            "reason": decision.reason,
            "payloadDigest": core["payloadDigest"],
            "approvals": progress(groups, []).summary,
        },
        status=202,
    )
