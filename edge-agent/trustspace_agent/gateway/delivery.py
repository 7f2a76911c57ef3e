"""Delivery to the destination node's gateway: HTTPS, SM2-signed requests (audit/auth.py).

Transfers to one peer that are ready while earlier deliveries to it are in flight go
together in one batch request under one signature (:mod:`trustspace_agent.gateway.batchwire`); at
most ``MAX_IN_FLIGHT`` requests per peer are open, so a lone transfer leaves at once and a
burst costs a few signatures instead of one each. Every transfer still gets its own answer.
A peer that does not know the batch endpoint gets one signed request per frame, as before.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from trustspace.audit.auth import sign_request
from trustspace.audit.keyfile import KeyFile
from trustspace_agent.gateway import batchwire

log = logging.getLogger(__name__)

INBOUND_PATH = "/v1/inbound"
FRAME_TYPE = "application/vnd.trustspace.transfer"
MAX_IN_FLIGHT = 4


@dataclass(frozen=True)
class Outcome:
    status: int
    """HTTP status; 0 when the destination could not be reached."""
    body: dict[str, Any]

    @property
    def delivered(self) -> bool:
        return self.status in (200, 201)


@dataclass
class _Peer:
    queue: deque[tuple[bytes, asyncio.Future[Outcome]]] = field(default_factory=deque)
    in_flight: int = 0
    batches: bool = True
    """False once the peer answered 404/405 on the batch path (an older gateway)."""


def _json(text: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        return {"code": "bad_response", "message": text[:200].decode(errors="replace")}
    return body if isinstance(body, dict) else {}


class PeerClient:
    def __init__(self, node: str, keys: KeyFile, ca_file: str, timeout: float) -> None:
        self._node = node
        self._keys = keys
        self._ssl = ssl.create_default_context(cafile=ca_file)
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._peers: dict[str, _Peer] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            connector=aiohttp.TCPConnector(ssl=self._ssl, limit=256),
        )

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def deliver(self, base_url: str, frame: bytes) -> Outcome:
        """Deliver one frame (alone or in a batch) and return the peer's answer to it."""
        peer = self._peers.setdefault(base_url.rstrip("/"), _Peer())
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        peer.queue.append((frame, future))
        if peer.in_flight < MAX_IN_FLIGHT:
            peer.in_flight += 1
            task = asyncio.create_task(self._sender(base_url.rstrip("/"), peer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _sender(self, url: str, peer: _Peer) -> None:
        try:
            while peer.queue:
                items = [peer.queue.popleft()]
                size = len(items[0][0])
                while (
                    peer.batches
                    and peer.queue
                    and len(items) < batchwire.MAX_FRAMES
                    and size + len(peer.queue[0][0]) <= batchwire.MAX_BYTES
                ):
                    items.append(peer.queue.popleft())
                    size += len(items[-1][0])
                try:
                    outcomes = await self._post(url, peer, [f for f, _ in items])
                except Exception as exc:  # every waiter gets an answer, never a hang
                    log.exception("delivery to %s failed", url)
                    outcomes = [Outcome(0, {"code": "unreachable", "message": repr(exc)})] * len(
                        items
                    )
                for (_, future), outcome in zip(items, outcomes, strict=True):
                    if not future.done():
                        future.set_result(outcome)
        finally:
            peer.in_flight -= 1

    async def _post(self, url: str, peer: _Peer, frames: list[bytes]) -> list[Outcome]:
        if not peer.batches:
            return list(await asyncio.gather(*(self._post_one(url, f) for f in frames)))
        manifest, body = batchwire.encode_batch(frames)
        status, answer = await self._request(
            url, batchwire.BATCH_PATH, body, manifest, batchwire.BATCH_TYPE
        )
        if status in (404, 405):
            log.warning("%s has no batch endpoint: delivering one frame per request", url)
            peer.batches = False
            return await self._post(url, peer, frames)
        results = answer.get("results") if status == 200 else None
        if not isinstance(results, list) or len(results) != len(frames):
            if status == 200:  # a 200 that does not answer every frame answers none
                status, answer = 502, {"code": "bad_response", "message": "batch answer malformed"}
            return [Outcome(status, answer)] * len(frames)
        return [
            Outcome(int(r.get("status", 0)), r.get("body") or {})
            if isinstance(r, dict)
            else Outcome(502, {"code": "bad_response", "message": "batch answer malformed"})
            for r in results
        ]

    async def _post_one(self, url: str, frame: bytes) -> Outcome:
        status, answer = await self._request(url, INBOUND_PATH, frame, frame, FRAME_TYPE)
        return Outcome(status, answer)

    async def _request(
        self, url: str, path: str, body: bytes, signed: bytes, content_type: str
    ) -> tuple[int, dict[str, Any]]:
        assert self._session is not None
        headers = sign_request("POST", path, signed, self._node, self._keys.get())
        headers["Content-Type"] = content_type
        try:
            async with self._session.post(url + path, data=body, headers=headers) as resp:
                return resp.status, _json(await resp.read())
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return 0, {"code": "unreachable", "message": str(exc) or type(exc).__name__}
