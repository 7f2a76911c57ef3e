"""The gateway in the agent process: start it with its routes and HTTPS listener, its
background tasks (review sweep, link reports), and stop it."""

from __future__ import annotations

import asyncio
import ssl

from aiohttp import web

from trustspace.audit.keyfile import KeyFile
from trustspace_agent.api import Appender
from trustspace_agent.auditq import GroupAppender
from trustspace_agent.config import AgentConfig
from trustspace_agent.gateway.core import Gateway
from trustspace_agent.gateway.linkreport import report_links
from trustspace_agent.gateway.reviews import sweep
from trustspace_agent.gateway.routes import add_local_routes, inbound_app
from trustspace_agent.shipper import HubClient


async def start_gateway(
    config: AgentConfig, keys: KeyFile, appender: Appender, app: web.Application
) -> tuple[Gateway | None, web.AppRunner | None]:
    """Add the gateway's routes to the local app and start its HTTPS inbound listener."""
    gw = config.gateway
    if gw is None:
        return None, None
    gateway = Gateway(config, gw, keys, GroupAppender(appender))
    await gateway.start()
    add_local_routes(gateway, app)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(gw.tls_cert_file, gw.tls_key_file)
    runner = web.AppRunner(inbound_app(gateway), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, gw.inbound_host, gw.inbound_port, ssl_context=tls).start()
    return gateway, runner


def gateway_tasks(
    config: AgentConfig, gateway: Gateway | None, hub: HubClient
) -> list[asyncio.Task[object]]:
    if gateway is None or config.gateway is None:
        return []
    return [
        asyncio.create_task(sweep(gateway), name="review-sweep"),
        asyncio.create_task(
            report_links(
                gateway.node,
                gateway.board,
                gateway.report_now,
                hub,
                config.gateway.link_report_seconds,
            ),
            name="link-report",
        ),
    ]


async def stop_gateway(gateway: Gateway | None, runner: web.AppRunner | None) -> None:
    if runner is not None:
        await runner.cleanup()
    if gateway is not None:
        await gateway.close()
