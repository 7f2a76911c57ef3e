"""What the gateway answers and records: its HTTP refusal, JSON bodies, rule lists.

HTTP errors are ``{"code", "message", "field"?}``; every refusal is an audit event.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import orjson
from aiohttp import web

from trustspace.policy import Decision


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers or {}
        self.extra = extra
        self.audited = False

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message, **self.extra}
        if self.field:
            body["field"] = self.field
        return body

    def response(self) -> web.Response:
        return json_response(self.body(), status=self.status, headers=self.headers)


def dumps(value: Any) -> bytes:
    """JSON for answers and audit details on the hot paths: orjson, or json for what orjson
    refuses (integers beyond 64 bits in a caller's records)."""
    try:
        return orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, ensure_ascii=False).encode()


def text(value: Any) -> str:
    return dumps(value).decode()


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=dumps(data),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rules(decision: Decision) -> list[str]:
    return [f"{m.kind}/{m.owner}/{m.rule}"[:253] for m in decision.matched][:64]
