"""Ships sealed batches to the hub collector: at-least-once, in order, resuming from the hub.

On start (and after any rejection) the shipper asks the hub which sequence it holds durably
and sends the stored batches after it, one request per batch, reading them from SQLite a few
at a time so memory stays bounded whatever the backlog. Every request is SM2-signed
(:mod:`trustspace.audit.auth`). Failures back off exponentially with full jitter. A
duplicate is harmless: the hub acknowledges it without storing it twice.

Up to ``shipWindow`` batches are in flight at once, each its own request, acknowledgements
taken in order (the hub applies a node's batches in sequence order, waiting briefly for a
predecessor that is still on the wire). Compaction of acknowledged events (a committed
DELETE, one fsync) runs beside the send loop, acknowledgements that arrive meanwhile folding
into one.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import logging
import random
import ssl
from typing import Any

import aiohttp

from trustspace.audit.auth import sign_request
from trustspace.audit.keyfile import KeyFile
from trustspace.onethread import OneThread
from trustspace_agent.config import AgentConfig
from trustspace_agent.metrics import AgentMetrics
from trustspace_agent.store import AuditStore, SealedBatch

log = logging.getLogger(__name__)
COMPACT_STEP = 4000


class Rejected(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class Backoff:
    def __init__(self, initial: float, maximum: float) -> None:
        self.initial, self.maximum, self.attempt = initial, maximum, 0

    def next(self) -> float:
        # "Full jitter": spreads reconnecting agents so a recovering hub is not stampeded.
        ceiling = min(self.maximum, self.initial * (2**self.attempt))
        self.attempt = min(self.attempt + 1, 30)
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not security

    def reset(self) -> None:
        self.attempt = 0


class HubClient:
    """Signed HTTPS requests to the collector."""

    def __init__(self, config: AgentConfig, keys: KeyFile) -> None:
        self._config = config
        self._keys = keys
        self._base = config.collector_url.rstrip("/")
        self._ssl = ssl.create_default_context(cafile=str(config.ca_file))
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HubClient:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._config.request_timeout_seconds),
            connector=aiohttp.TCPConnector(ssl=self._ssl, limit=self._config.ship_window + 2),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(self, method: str, path: str, body: bytes = b"") -> Any:
        assert self._session is not None
        headers = sign_request(method, path, body, self._config.node, self._keys.get())
        headers["Content-Type"] = "application/json"
        async with self._session.request(
            method, self._base + path, data=body or None, headers=headers
        ) as resp:
            text = await resp.text()
            try:
                payload = json.loads(text) if text else {}
            except json.JSONDecodeError:
                payload = {"code": "bad_response", "message": text[:200]}
            if resp.status >= 300:
                raise Rejected(
                    resp.status,
                    str(payload.get("code", "http_error")),
                    str(payload.get("message", text[:200])),
                )
            return payload


class Shipper:
    def __init__(
        self,
        config: AgentConfig,
        store: OneThread[AuditStore],
        hub: HubClient,
        metrics: AgentMetrics,
        sealed: asyncio.Event,
    ) -> None:
        self._config = config
        self._store = store
        self._hub = hub
        self._metrics = metrics
        self._sealed = sealed
        self._backoff = Backoff(config.backoff_initial_seconds, config.backoff_max_seconds)
        self.hub_seq: int | None = None
        self._acked = asyncio.Event()

    async def run(self) -> None:
        compactor = asyncio.create_task(self._compact(), name="audit-compactor")
        try:
            while True:
                try:
                    await self._sync()
                    await self._ship()
                except Rejected as exc:
                    self._metrics.rejected.labels(exc.code).inc()
                    log.error("hub rejected audit batch: %s", exc)
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    log.warning("hub unreachable: %s", exc or type(exc).__name__)
                delay = self._backoff.next()
                await asyncio.sleep(delay)
        finally:
            compactor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await compactor

    async def _compact(self) -> None:
        while True:
            await self._acked.wait()
            self._acked.clear()
            try:
                # In steps, so appends queued on the store thread are not held up by one
                # long DELETE after a burst.
                while self.hub_seq is not None:
                    acked = await self._store.call(lambda s: s.acked_seq)
                    if acked >= self.hub_seq:
                        break
                    await self._ack(min(self.hub_seq, acked + COMPACT_STEP))
            except Exception:  # the store is failing; the next acknowledgement tries again
                log.exception("could not compact acknowledged audit events")

    async def _sync(self) -> None:
        path = f"/v1/audit/nodes/{self._config.node}/ack"
        answer = await self._hub.request("GET", path)
        hub_seq = int(answer.get("lastSeq", 0))
        acked, sealed = await self._store.call(lambda s: (s.acked_seq, s.sealed_seq))
        if hub_seq > sealed:
            log.error("hub holds seq %d but this store only has %d sealed", hub_seq, sealed)
        elif hub_seq < acked:
            log.error(
                "hub holds only seq %d but acknowledged %d before: it lost data", hub_seq, acked
            )
        else:
            await self._ack(hub_seq)
        self.hub_seq = hub_seq
        log.info("resuming audit stream after seq %d", hub_seq)

    async def _ack(self, seq: int) -> None:
        before = await self._store.call(lambda s: s.acked_seq)
        await self._store.call(lambda s: s.ack(seq))
        if seq > before:
            self._metrics.acked.inc(seq - before)
        self._metrics.acked_seq.set(seq)

    async def _ship(self) -> None:
        assert self.hub_seq is not None
        inflight: collections.deque[tuple[SealedBatch, asyncio.Task[Any]]] = collections.deque()
        sent = self.hub_seq  # the last seq handed to a request
        try:
            while True:
                if len(inflight) < self._config.ship_window:
                    self._sealed.clear()
                    page = await self._store.call(
                        functools.partial(
                            AuditStore.batches_after,
                            seq=sent,
                            limit=self._config.ship_window - len(inflight),
                        )
                    )
                    for batch in page:
                        body = await self._store.call(
                            functools.partial(AuditStore.wire_body, batch=batch)
                        )
                        request = self._hub.request("POST", "/v1/audit/batches", body)
                        inflight.append((batch, asyncio.create_task(request)))
                        sent = batch.last_seq
                if not inflight:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._sealed.wait(), timeout=1.0)
                    continue
                batch, task = inflight.popleft()
                answer = await task
                self._metrics.shipped.inc(batch.last_seq - batch.first_seq + 1)
                self.hub_seq = max(self.hub_seq, int(answer["ackedSeq"]))
                self._acked.set()
                self._backoff.reset()
        finally:
            # After a failure the hub is asked again where it stands; what else was in
            # flight is moot (a batch it did store comes back as a duplicate at most).
            for _, task in inflight:
                task.cancel()
            await asyncio.gather(*(task for _, task in inflight), return_exceptions=True)
