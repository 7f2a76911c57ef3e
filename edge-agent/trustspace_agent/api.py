"""The agent's local HTTP API, for other components on the node (loopback only by default).

``POST /v1/audit/events`` takes one event (the :class:`EventFields` JSON) or
``{"events": [...]}`` and answers 201 once the events are durable. Under backpressure it
answers **507** with ``{"code": "audit_backpressure", ...}``; if the store itself fails, 503.
Callers must treat both as "operation refused".
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import TypeAdapter, ValidationError

from trustspace.audit.event import EventFields
from trustspace.onethread import OneThread
from trustspace.refusal import HttpRefusal
from trustspace_agent.metrics import AgentMetrics
from trustspace_agent.store import Appended, AuditBackpressure, AuditStore

log = logging.getLogger(__name__)
MAX_EVENTS_PER_REQUEST = 1000
# One validation call per request rather than one per event.
_FIELDS = TypeAdapter(list[EventFields])


class Appender:
    """The in-process append API (the transfer gateway will call this directly)."""

    def __init__(self, store: OneThread[AuditStore], metrics: AgentMetrics, on_append: Any) -> None:
        self._store = store
        self._metrics = metrics
        self._on_append = on_append

    async def append(self, fields: list[EventFields]) -> list[Appended]:
        try:
            events = await self._store.call(lambda s: s.append_many(fields))
        except AuditBackpressure:
            self._metrics.backpressure.set(1)
            self._metrics.refused.inc(len(fields))
            raise
        self._metrics.backpressure.set(0)
        self._metrics.appended.inc(len(events))
        self._on_append(len(events))
        return events


class AppendsEvents(Protocol):
    async def append(self, fields: list[EventFields]) -> list[Appended]: ...


def build_app(
    appender: AppendsEvents, store: OneThread[AuditStore], metrics: AgentMetrics
) -> web.Application:
    async def post_events(request: web.Request) -> web.Response:
        try:
            data = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return HttpRefusal(400, "malformed_json", "body is not JSON").response()
        items = data.get("events") if isinstance(data, dict) and "events" in data else [data]
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_EVENTS_PER_REQUEST:
            return HttpRefusal(
                400, "malformed_event", "events must be a list of 1..1000 objects"
            ).response()
        try:
            fields = _FIELDS.validate_python(items)
        except ValidationError as exc:
            return HttpRefusal(
                400, "malformed_event", str(exc).replace("\n", "; ")[:500]
            ).response()
        try:
            events = await appender.append(fields)
        except AuditBackpressure as exc:
            return HttpRefusal(507, "audit_backpressure", str(exc)).response()
        except Exception as exc:
            log.exception("audit store failure")
            return HttpRefusal(503, "audit_store_unavailable", type(exc).__name__).response()
        answer = {"events": [{"seq": e.seq, "hash": e.digest} for e in events]}
        return web.Response(body=orjson.dumps(answer), status=201, content_type="application/json")

    async def healthz(request: web.Request) -> web.Response:
        full = await store.call(lambda s: s.backpressure)
        return web.json_response({"status": "ok", "backpressure": full})

    async def metrics_view(request: web.Request) -> web.Response:
        last, acked, full = await store.call(lambda s: (s.last_seq, s.acked_seq, s.backpressure))
        metrics.backlog.set(last - acked)
        metrics.backpressure.set(1 if full else 0)
        return web.Response(
            body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/v1/audit/events", post_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    return app
