"""The breakers as the gateway uses them (B8): admitting a transfer on its link and its
caller, the refusal a caller sees, and the local API that lists and resets them."""

from __future__ import annotations

import time

from aiohttp import web

from trustspace.audit.event import EventFields
from trustspace_agent.gateway.answers import GatewayError, json_response
from trustspace_agent.gateway.breaker import Breaker, BreakerBoard, BreakerSettings, Refusal
from trustspace_agent.gateway.callers import CallerRefused
from trustspace_agent.gateway.core import Gateway


def refusal_error(r: Refusal) -> GatewayError:
    status, code = (503, "circuit_open") if r.kind == "link" else (429, "caller_circuit_open")
    headers = {}
    if r.resume_at is not None:
        headers["Retry-After"] = str(max(1, int(r.resume_at - time.time()) + 1))
    return GatewayError(
        status,
        code,
        r.message,
        headers=headers,
        breaker={"kind": r.kind, "name": r.name, "state": r.state, "reason": r.reason},
    )


def admit(
    board: BreakerBoard, settings: BreakerSettings, link_name: str, caller: str, now: float
) -> tuple[Breaker, Breaker, list[Breaker]]:
    """The link and caller breakers of one transfer, and those of them letting it through as
    their half-open probe; GatewayError if either is open (the caller's is asked first)."""
    link = board.get("link", link_name, settings)
    caller_b = board.get("caller", caller, settings)
    for b in (caller_b, link):
        refusal = b.admit(now)
        if refusal is not None:
            raise refusal_error(refusal)
    return link, caller_b, [b for b in (caller_b, link) if b.probing]


async def list_links(gw: Gateway, request: web.Request) -> web.Response:
    return json_response(
        {"node": gw.node, "items": [b.status() for b in gw.board.breakers.values()]}
    )


async def reset_link(gw: Gateway, request: web.Request) -> web.Response:
    name = request.match_info["name"]
    kind = request.query.get("kind", "link")
    try:
        actor = await gw.identify(request, f"{kind}/{name}", "breaker.reset_refused")
    except (CallerRefused, GatewayError) as exc:
        return exc.response()
    b = gw.board.breakers.get((kind, name))
    if b is None:
        return GatewayError(404, "not_found", f"no {kind} {name} on this gateway").response()
    was = b.state
    b.reset()
    gw.board.save()
    gw.report_now.set()
    try:
        await gw.record(
            [
                EventFields(
                    actor=actor,
                    action="breaker.reset",
                    subject=f"{kind}/{name}",
                    decision="reset",
                    detail=f"manual reset from {was}",
                )
            ]
        )
    except GatewayError as exc:
        return exc.response()
    return json_response(b.status())
