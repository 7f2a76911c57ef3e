"""What the gateway answers and records: its HTTP refusal, JSON bodies, rule lists.

HTTP errors are ``{"code", "message", "field"?}``; every refusal is an audit event.
"""

from __future__ import annotations

from typing import Any

from trustspace.policy import Decision
from trustspace.refusal import HttpRefusal, dumps, json_response

__all__ = ["GatewayError", "dumps", "json_response", "rules", "text"]


class GatewayError(HttpRefusal):
    """A transfer, review, link or inbox request the gateway refuses."""


def text(value: Any) -> str:
    return dumps(value).decode()


def rules(decision: Decision) -> list[str]:
    return [f"{m.kind}/{m.owner}/{m.rule}"[:253] for m in decision.matched][:64]
