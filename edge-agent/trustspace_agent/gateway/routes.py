"""The gateway's HTTP routes: the local API on the agent's app, and the inbound app that
listens for peer gateways on the HTTPS port."""

from __future__ import annotations

from functools import partial

from aiohttp import web

from trustspace_agent.gateway import batchwire, inbound, inbox, links, outbound, reviews
from trustspace_agent.gateway.answers import json_response
from trustspace_agent.gateway.core import FRAME_OVERHEAD, Gateway


def add_local_routes(gw: Gateway, app: web.Application) -> None:
    app.router.add_post("/v1/transfers", partial(outbound.post_transfer, gw))
    app.router.add_get("/v1/reviews", partial(reviews.list_reviews, gw))
    app.router.add_get("/v1/reviews/{id}", partial(reviews.get_review, gw))
    app.router.add_post("/v1/reviews/{id}/approvals", partial(reviews.post_approval, gw))
    app.router.add_get("/v1/links", partial(links.list_links, gw))
    app.router.add_post("/v1/links/{name}/reset", partial(links.reset_link, gw))
    app.router.add_get("/v1/inbox", partial(inbox.list_inbox, gw))
    app.router.add_get("/v1/inbox/{id}", partial(inbox.get_inbox, gw))


def inbound_app(gw: Gateway) -> web.Application:
    async def healthz(request: web.Request) -> web.Response:
        return json_response({"status": "ok", "node": gw.node})

    limit = max(gw.config.max_payload_bytes, batchwire.MAX_BYTES) + FRAME_OVERHEAD
    app = web.Application(client_max_size=limit)
    app.router.add_post("/v1/inbound", partial(inbound.post_inbound, gw))
    app.router.add_post(batchwire.BATCH_PATH, partial(inbound.post_inbound_batch, gw))
    app.router.add_get("/healthz", healthz)
    return app
