"""Delivery to the destination node's gateway: HTTPS, SM2-signed request (audit/auth.py).

The request signature covers the whole frame, so it is also the source's signature of the
protected transfer (see :mod:`trustspace_agent.envelope`).
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from typing import Any

import aiohttp

from trustspace.audit.auth import sign_request
from trustspace.audit.keyfile import KeyFile

INBOUND_PATH = "/v1/inbound"
FRAME_TYPE = "application/vnd.trustspace.transfer"


@dataclass(frozen=True)
class Outcome:
    status: int
    """HTTP status; 0 when the destination could not be reached."""
    body: dict[str, Any]

    @property
    def delivered(self) -> bool:
        return self.status in (200, 201)


class PeerClient:
    def __init__(self, node: str, keys: KeyFile, ca_file: str, timeout: float) -> None:
        self._node = node
        self._keys = keys
        self._ssl = ssl.create_default_context(cafile=ca_file)
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            connector=aiohttp.TCPConnector(ssl=self._ssl, limit=256),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def deliver(self, base_url: str, frame: bytes) -> Outcome:
        assert self._session is not None
        headers = sign_request("POST", INBOUND_PATH, frame, self._node, self._keys.get())
        headers["Content-Type"] = FRAME_TYPE
        try:
            async with self._session.post(
                base_url.rstrip("/") + INBOUND_PATH, data=frame, headers=headers
            ) as resp:
                text = await resp.text()
                try:
                    body = json.loads(text) if text else {}
                except json.JSONDecodeError:
                    body = {"code": "bad_response", "message": text[:200]}
                return Outcome(resp.status, body if isinstance(body, dict) else {})
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return Outcome(0, {"code": "unreachable", "message": str(exc) or type(exc).__name__})
