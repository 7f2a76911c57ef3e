"""The local API over what this gateway received (``/v1/inbox``).

Received payloads are decrypted data: only identified callers read them, and each read of
one is an audit event.
"""

from __future__ import annotations

from aiohttp import web

from trustspace.audit.event import EventFields
from trustspace_agent.gateway.answers import GatewayError, json_response
from trustspace_agent.gateway.callers import CallerRefused
from trustspace_agent.gateway.core import Gateway


async def list_inbox(gw: Gateway, request: web.Request) -> web.Response:
    try:
        await gw.identify(request, "inbox", "inbox.read_refused")
    except (CallerRefused, GatewayError) as exc:
        return exc.response()
    return json_response({"items": await gw.inbox.call(lambda s: s.list_ids())})


async def get_inbox(gw: Gateway, request: web.Request) -> web.Response:
    tid = request.match_info["id"]
    try:
        caller = await gw.identify(request, tid[:253], "inbox.read_refused")
        item = await gw.inbox.call(lambda s: s.get(tid))
        if item is None:
            raise GatewayError(404, "not_found", f"nothing received as {tid}")
        await gw.record(
            [
                EventFields(
                    actor=caller,
                    action="inbox.read",
                    subject=tid,
                    decision="read",
                    classification=item["metadata"].get("classification"),
                    payloadDigest=item["metadata"].get("payloadDigest"),
                )
            ]
        )
    except (CallerRefused, GatewayError) as exc:
        return exc.response()
    return json_response(item)
