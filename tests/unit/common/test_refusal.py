"""One refusal: every HTTP-shaped error of the data space renders the same JSON answer."""

from __future__ import annotations

import json

import pytest

from trustspace.audit.errors import AuditError
from trustspace.refusal import HttpRefusal
from trustspace.trust import TrustError
from trustspace_agent.gateway.answers import GatewayError
from trustspace_agent.gateway.approvals import ApprovalError
from trustspace_agent.gateway.callers import CallerRefused
from trustspace_agent.gateway.transfer_input import InputError

pytestmark = pytest.mark.unit


def _answer(exc: HttpRefusal) -> tuple[int, dict[str, object], dict[str, str]]:
    response = exc.response()
    assert response.content_type == "application/json"
    assert isinstance(response.body, bytes)
    return response.status, json.loads(response.body), dict(response.headers)


def test_body_has_field_and_extra_members_only_when_given() -> None:
    status, body, _ = _answer(HttpRefusal(422, "unknown_node", "no such node"))
    assert (status, body) == (422, {"code": "unknown_node", "message": "no such node"})
    refused = HttpRefusal(
        503, "circuit_open", "open", "link", {"Retry-After": "7"}, breaker={"state": "Open"}
    )
    status, body, headers = _answer(refused)
    assert status == 503
    assert body == {
        "code": "circuit_open",
        "message": "open",
        "field": "link",
        "breaker": {"state": "Open"},
    }
    assert headers["Retry-After"] == "7"


@pytest.mark.parametrize(
    "exc",
    [
        GatewayError(415, "unsupported_media_type", "expected a frame", "Content-Type"),
        InputError(415, "unsupported_media_type", "expected a frame", "Content-Type"),
        ApprovalError(415, "unsupported_media_type", "expected a frame", "Content-Type"),
        CallerRefused(415, "unsupported_media_type", "expected a frame", "Content-Type"),
    ],
)
def test_the_agent_refusals_answer_alike(exc: HttpRefusal) -> None:
    assert _answer(exc)[:2] == (
        415,
        {"code": "unsupported_media_type", "message": "expected a frame", "field": "Content-Type"},
    )
    assert str(exc) == "expected a frame"
    assert not exc.audited


def test_audit_errors_carry_the_hubs_status_per_code() -> None:
    assert _answer(AuditError("bad_signature", "forged"))[:2] == (
        401,
        {"code": "bad_signature", "message": "forged"},
    )
    assert AuditError("gap", "missing 3..4").status == 409
    assert AuditError("node_mismatch", "not yours").status == 403
    assert AuditError("malformed_batch", "no").status == 400, "unknown codes are the caller's"
    assert TrustError("unknown_key", "who?").status == 403
    # Still a ValueError, and its text still names the code (logs and wrapped messages).
    assert isinstance(AuditError("x", "y"), ValueError)
    assert str(AuditError("fork", "two heads")) == "fork: two heads"
