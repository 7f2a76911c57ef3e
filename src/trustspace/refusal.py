"""One refused request, as every HTTP layer of the data space answers it.

The hub's collector, the agent's local API and the gateway all refuse with the same JSON
body, ``{"code", "message", "field"?, ...}``, an HTTP status and sometimes headers
(``Retry-After``, ``WWW-Authenticate``). :class:`HttpRefusal` is that answer as an
exception: the checks raise it (or a subclass that names their domain) where they find the
problem, and the HTTP layer renders it with :meth:`HttpRefusal.response`, whatever the
subclass. ``code`` is for machines and stable; ``message`` is for people.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from aiohttp import web


def dumps(value: Any) -> bytes:
    """JSON for answers on the hot paths: orjson, or json for what orjson refuses
    (integers beyond 64 bits in a caller's records)."""
    try:
        return orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, ensure_ascii=False).encode()


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    from aiohttp import web  # the CLI and the key tools import refusals without a server

    return web.Response(
        body=dumps(data),
        status=status,
        headers=dict(headers) if headers else None,
        content_type="application/json",
        charset="utf-8",
    )


class HttpRefusal(Exception):
    """A request refused: ``status`` (HTTP), ``code``, ``message``, the offending ``field``
    if one, response ``headers``, and ``extra`` members of the body (e.g. a breaker's state)."""

    audited = False
    """Set by a layer that already wrote this refusal to the audit log, so that the handler
    that answers it does not write it twice."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers: dict[str, str] = dict(headers or {})
        self.extra = extra

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message, **self.extra}
        if self.field:
            body["field"] = self.field
        return body

    def response(self) -> web.Response:
        return json_response(self.body(), status=self.status, headers=self.headers)
