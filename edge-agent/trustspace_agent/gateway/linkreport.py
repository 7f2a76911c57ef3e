"""Reports link state and counters to the hub collector (``POST /v1/links/status``): at once
when a breaker trips or is reset, every ``linkReportSeconds`` otherwise. The collector turns
them into ``MirrorLink.status``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from trustspace_agent.gateway.breaker import BreakerBoard
from trustspace_agent.shipper import HubClient

log = logging.getLogger(__name__)


def link_report(node: str, board: BreakerBoard) -> bytes:
    now = time.time()
    links = []
    for b in board.links():
        b.tick(now)
        links.append(b.status())
    return json.dumps({"node": node, "sentAt": int(now), "links": links}).encode()


async def report_links(
    node: str, board: BreakerBoard, report_now: asyncio.Event, hub: HubClient, period: float
) -> None:
    """Report ``board``'s links every ``period`` seconds, or as soon as ``report_now`` is set
    (a trip or a reset)."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(report_now.wait(), timeout=period)
        report_now.clear()
        body = link_report(node, board)
        try:
            await hub.request("POST", "/v1/links/status", body)
        except Exception as exc:  # never kill the agent; the next report carries the state
            log.warning("link report to the hub failed: %s", exc)
