"""Link reports from the gateways -> ``MirrorLink.status`` (B8): ``POST /v1/links/status``.

Each gateway reports its links (a trip at once, otherwise periodically), SM2-signed like
every agent request. Both ends of a link may report it: the source counts transfers, either
side may trip. The collector keeps the latest report per (link, node) and writes the merge:
counters from the source (``<source>-to-<destination>``), the breaker of the side that is
most open (``Open`` > ``HalfOpen`` > ``Closed``), ``trips`` summed. ``state`` is ``Tripped``
while a breaker is open, ``Degraded`` while one probes, ``Established`` otherwise. The
``CircuitBreakerTripped`` condition says the same in the form ``kubectl describe`` and
``kubectl wait --for=condition=CircuitBreakerTripped`` read: ``True`` with the trip's reason
(``DeniedBurst``, ``InvalidSignatures``, ``VolumeSpike``, ``ManualTrip``) and message while
open, ``False`` (``Probing`` or ``BreakerClosed``) otherwise.

Writes are server-side apply on the ``status`` subresource with field manager
``trustspace-collector``, which owns only that one entry of ``conditions`` (a list map keyed
by ``type``): the operator's conditions are left alone. A change of breaker state is
written at once and raises an Event on the MirrorLink, unchanged reports at most once per
``minInterval``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from trustspace.api.conditions import condition_dict
from trustspace.audit.errors import AuditError
from trustspace.onethread import OneThread
from trustspace_operator.collector.status_sinks import FIELD_MANAGER

if TYPE_CHECKING:
    from trustspace_operator.collector.collector_config import CollectorConfig
    from trustspace_operator.collector.server import Collector

log = logging.getLogger(__name__)

_ORDER = {"Open": 2, "HalfOpen": 1, "Closed": 0}
_STATE = {"Open": "Tripped", "HalfOpen": "Degraded", "Closed": "Established"}


class LinkSink(Protocol):
    def write(self, link: str, status: dict[str, Any], event: tuple[str, str, str] | None) -> None:
        """Write ``status``; ``event`` is (type, reason, message) on a breaker change."""


class NullLinkSink:
    def write(self, link: str, status: dict[str, Any], event: tuple[str, str, str] | None) -> None:
        pass


class FileLinkSink:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()

    def write(self, link: str, status: dict[str, Any], event: tuple[str, str, str] | None) -> None:
        record = {"type": "link", "link": link, "status": status, "event": event}
        with self._lock, self._path.open("a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")


class KubeLinkSink:
    """Server-side apply on ``mirrorlinks/<link>/status`` in ``namespace``."""

    def __init__(self, namespace: str, kubeconfig: str | None = None) -> None:
        from trustspace.kube import Kube
        from trustspace_operator.events import EventRecorder

        self._namespace = namespace
        self._kube = Kube.from_kubeconfig(kubeconfig)
        self._events = EventRecorder(self._kube, component=FIELD_MANAGER)

    def write(self, link: str, status: dict[str, Any], event: tuple[str, str, str] | None) -> None:
        from trustspace.kube import ApiError, NotFound, Unreachable
        from trustspace.kube import kinds as k

        try:
            live = self._kube.apply_status(
                k.MIRRORLINK, link, self._namespace, status, field_manager=FIELD_MANAGER
            )
        except NotFound:
            log.warning("link report for %s: no such MirrorLink in %s", link, self._namespace)
            return
        except (ApiError, Unreachable) as exc:
            log.error("could not write MirrorLink %s status: %s", link, exc)
            return
        if event is not None:
            self._events.post(live, event[0], event[1], event[2])  # type: ignore[arg-type]


def merge(link: str, reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One MirrorLink status from the reports of its two ends."""
    source = next((n for n in reports if link.startswith(n + "-to-")), None)
    counted = reports[source] if source else next(iter(reports.values()))
    worst = max(reports.values(), key=lambda r: _ORDER.get(r["circuitBreaker"].get("state", ""), 0))
    breaker = dict(worst["circuitBreaker"])
    breaker["trips"] = sum(int(r["circuitBreaker"].get("trips", 0)) for r in reports.values())
    status: dict[str, Any] = {
        "state": _STATE.get(breaker.get("state", "Closed"), "Established"),
        "transfers": counted["transfers"],
        "bytesTransferred": counted["bytesTransferred"],
        "circuitBreaker": breaker,
    }
    if "lastSyncTime" in counted:
        status["lastSyncTime"] = counted["lastSyncTime"]
    return status


def breaker_condition(
    status: dict[str, Any], previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``CircuitBreakerTripped`` condition for a merged status; ``previous`` is the one
    last written for this link (the caller keeps it, a report does not know when the
    breaker's state last changed)."""
    cb = status["circuitBreaker"]
    state = cb.get("state", "Closed")
    if state == "Open":
        reason = str(cb.get("reason") or "Tripped")
        message = str(cb.get("message") or "the circuit breaker is open")
        if cb.get("resumeAt"):
            message += f" (probing resumes at {cb['resumeAt']})"
        else:
            message += " (waiting for a manual reset: trustspace links reset)"
    elif state == "HalfOpen":
        reason, message = "Probing", "cool-down over: trial transfers decide whether it closes"
    else:
        reason, message = "BreakerClosed", "the circuit breaker is closed: data can flow"
    current = [previous] if previous else []
    return condition_dict(current, "CircuitBreakerTripped", state == "Open", reason, message)


def _valid(item: Any) -> bool:
    try:
        return (
            isinstance(item["name"], str)
            and 0 < len(item["name"]) <= 253
            and isinstance(item["transfers"], dict)
            and all(
                isinstance(item["transfers"][k], int) for k in ("allowed", "denied", "inReview")
            )
            and isinstance(item["bytesTransferred"], int)
            and isinstance(item["circuitBreaker"], dict)
            and item["circuitBreaker"].get("state") in _ORDER
        )
    except (KeyError, TypeError):
        return False


class LinkReports:
    def __init__(self, collector: Collector, sink: LinkSink, min_interval: float = 5.0) -> None:
        self._collector = collector
        self._min_interval = min_interval
        self._reports: dict[str, dict[str, dict[str, Any]]] = {}
        self._written: dict[str, tuple[float, str, str]] = {}
        #: link -> the CircuitBreakerTripped condition last built (keeps its transition time).
        self._conditions: dict[str, dict[str, Any]] = {}
        # One writer thread keeps the writes of one link in order and off the event loop.
        self._writer = OneThread(sink, "link-status")

    async def _write(
        self, name: str, status: dict[str, Any], event: tuple[str, str, str] | None
    ) -> None:
        await self._writer.call(lambda sink: sink.write(name, status, event))

    def install(self, app: web.Application) -> None:
        app.router.add_post("/v1/links/status", self.post_links)

    async def post_links(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            node = self._collector.authenticate(request, body)
            try:
                data = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise AuditError("malformed_request", "body is not JSON") from None
            links = data.get("links") if isinstance(data, dict) else None
            if not isinstance(links, list) or not all(_valid(i) for i in links):
                raise AuditError("malformed_request", "links must be a list of link reports")
        except AuditError as exc:
            return exc.response()
        written = 0
        now = time.monotonic()
        for item in links:
            name = item["name"]
            if not (name.startswith(node + "-to-") or name.endswith("-to-" + node)):
                continue  # a node speaks only for links it is an end of
            self._reports.setdefault(name, {})[node] = item
            status = merge(name, self._reports[name])
            state = status["circuitBreaker"]["state"]
            condition = breaker_condition(status, self._conditions.get(name))
            self._conditions[name] = condition
            status["conditions"] = [condition]
            digest = json.dumps(status, sort_keys=True)
            last = self._written.get(name)
            event = None
            if last is None or last[1] != state:
                if state == "Open":
                    cb = status["circuitBreaker"]
                    event = (
                        "Warning",
                        "CircuitBreakerTripped",
                        f"{cb.get('reason')}: {cb.get('message')}",
                    )
                elif last is not None:
                    event = ("Normal", f"CircuitBreaker{state}", f"circuit breaker is {state}")
            elif last[2] == digest or now - last[0] < self._min_interval:
                continue
            self._written[name] = (now, state, digest)
            await self._write(name, status, event)
            written += 1
        return web.json_response({"written": written})


def make_link_sink(config: CollectorConfig) -> LinkSink:
    """The same destination as the node status: a file, the cluster, or nowhere."""
    if config.status_sink == "file" and config.status_file is not None:
        return FileLinkSink(config.status_file)
    if config.status_sink == "kubernetes":
        return KubeLinkSink(config.status_namespace or "default")
    return NullLinkSink()
