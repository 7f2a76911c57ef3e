"""Reports link state and counters to the hub collector (``POST /v1/links/status``): at once
when a breaker trips or is reset, every ``linkReportSeconds`` otherwise. The collector turns
them into ``MirrorLink.status``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from trustspace_agent.gateway import Gateway
from trustspace_agent.shipper import HubClient

log = logging.getLogger(__name__)


def link_report(gateway: Gateway) -> bytes:
    now = time.time()
    links = []
    for b in gateway.board.links():
        b.tick(now)
        links.append(b.status())
    return json.dumps({"node": gateway.node, "sentAt": int(now), "links": links}).encode()


async def report_links(gateway: Gateway, hub: HubClient, period: float) -> None:
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gateway.report_now.wait(), timeout=period)
        gateway.report_now.clear()
        body = link_report(gateway)
        try:
            await hub.request("POST", "/v1/links/status", body)
        except Exception as exc:  # never kill the agent; the next report carries the state
            log.warning("link report to the hub failed: %s", exc)
