"""Bad input of every kind: a precise 4xx naming the field, an audit event, no crash."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from typing import Any

import pytest

from support.gateway_harness import GatewayHarness
from trustspace.audit.auth import sign_request

META = {
    "source": "vn-hanoi",
    "destination": "cn-nanning",
    "classification": "internal",
    "categories": ["logistics"],
}
J = {"Content-Type": "application/json"}


def body(**changes: Any) -> bytes:
    meta = {**META, **changes.pop("meta", {})}
    for k in [k for k, v in meta.items() if v is None]:
        del meta[k]
    doc: dict[str, Any] = {"metadata": meta, "records": [{"a": 1}], **changes}
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


CASES: list[tuple[str, bytes, dict[str, str], int, str, str | None]] = [
    ("not json", b"{nope", J, 400, "malformed_json", "body"),
    ("json array", b"[1]", J, 400, "malformed_json", "body"),
    ("no metadata", json.dumps({"records": [{}]}).encode(), J, 400, "missing_field", "metadata"),
    ("no source", body(meta={"source": None}), J, 400, "missing_field", "metadata.source"),
    (
        "no destination",
        body(meta={"destination": None}),
        J,
        400,
        "missing_field",
        "metadata.destination",
    ),
    (
        "no classification",
        body(meta={"classification": None}),
        J,
        400,
        "missing_field",
        "metadata.classification",
    ),
    (
        "unknown node",
        body(meta={"destination": "xx-nowhere"}),
        J,
        422,
        "unknown_node",
        "metadata.destination",
    ),
    (
        "other source",
        body(meta={"source": "sg-singapore"}),
        J,
        403,
        "not_local_source",
        "metadata.source",
    ),
    (
        "bad class",
        body(meta={"classification": "secret"}),
        J,
        422,
        "unknown_value",
        "metadata.classification",
    ),
    (
        "bad category",
        body(meta={"categories": ["weapons"]}),
        J,
        422,
        "unknown_value",
        "metadata.categories",
    ),
    (
        "categories not list",
        body(meta={"categories": "trade"}),
        J,
        400,
        "invalid_field",
        "metadata.categories",
    ),
    ("unknown meta", body(meta={"colour": "red"}), J, 400, "unknown_field", "metadata.colour"),
    ("no payload", body(records=None), J, 400, "missing_field", "records"),
    ("both payloads", body(payloadBase64="AA=="), J, 400, "missing_field", "records"),
    ("records not objects", body(records=[1, 2]), J, 400, "invalid_field", "records"),
    ("empty records", body(records=[]), J, 400, "invalid_field", "records"),
    (
        "bad base64",
        body(records=None, payloadBase64="***"),
        J,
        400,
        "invalid_field",
        "payloadBase64",
    ),
    (
        "wrong type",
        b"hello",
        {"Content-Type": "text/plain"},
        415,
        "unsupported_media_type",
        "Content-Type",
    ),
    (
        "no metadata header",
        b"hello",
        {"Content-Type": "application/octet-stream"},
        400,
        "missing_field",
        "X-Trustspace-Metadata",
    ),
    (
        "oversized body",
        body(records=None, payloadBase64=base64.b64encode(b"x" * (2 << 20)).decode()),
        J,
        413,
        "payload_too_large",
        "body",
    ),
    (
        "oversized payload",
        b"x" * ((2 << 20) + 1),
        {"Content-Type": "application/octet-stream", "X-Trustspace-Metadata": json.dumps(META)},
        413,
        "payload_too_large",
        "payload",
    ),
    (
        "bytes need desensitisation",
        json.dumps(
            {
                "metadata": {
                    **META,
                    "source": "vn-hanoi",
                    "classification": "internal",
                    "categories": ["health"],
                },
                "payloadBase64": "AA==",
            }
        ).encode(),
        J,
        422,
        "opaque_payload",
        "payloadBase64",
    ),
]


@pytest.mark.parametrize(
    ("name", "data", "headers", "status", "code", "field"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_transfer_requests(
    space: GatewayHarness,
    name: str,
    data: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
    field: str | None,
) -> None:
    caller = "bad-" + name.replace(" ", "-")
    got, answer = space.call(
        "vn-hanoi", "POST", "/v1/transfers", data, {**headers, "X-Trustspace-Caller": caller}
    )
    assert (got, answer.get("code"), answer.get("field")) == (status, code, field), answer
    events = space.audit_events("vn-hanoi")
    refusals = [
        e for e in events.values() if e["actor"] == caller and e["action"] == "transfer.rejected"
    ]
    assert len(refusals) == 1
    assert json.loads(refusals[0]["detail"])["code"] == code


def test_oversized_body_is_refused_before_it_is_read(space: GatewayHarness) -> None:
    data = b"x" * (3 * 1024 * 1024)
    got, answer = space.call(
        "vn-hanoi",
        "POST",
        "/v1/transfers",
        data,
        {"Content-Type": "application/octet-stream", "X-Trustspace-Metadata": json.dumps(META)},
    )
    assert (got, answer["code"]) == (413, "payload_too_large")
    assert space._agent_up("vn-hanoi")


def _inbound(space: GatewayHarness, data: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    ctx = ssl.create_default_context(cafile=str(space.ca))
    req = urllib.request.Request(
        f"https://127.0.0.1:{space.inbound_ports['cn-nanning']}/v1/inbound",
        data=data,
        headers=headers,
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


FRAME = {"Content-Type": "application/vnd.trustspace.transfer"}


def test_inbound_refuses_unsigned_forged_and_malformed(space: GatewayHarness) -> None:
    assert _inbound(space, b"TSX1", FRAME)[1]["code"] == "missing_auth"
    assert _inbound(space, b"x", {"Content-Type": "text/plain"})[0] == 415
    signed = sign_request(
        "POST", "/v1/inbound", b"garbage", "th-rayong", space.node_keys["th-rayong"]
    )
    status, answer = _inbound(space, b"garbage", {**FRAME, **signed})
    assert (status, answer["code"]) == (400, "malformed_frame")
    # Replaying the same signed request is refused even though the signature is valid.
    status, answer = _inbound(space, b"garbage", {**FRAME, **signed})
    assert (status, answer["code"]) == (401, "replayed_nonce")
    impostor = sign_request(
        "POST", "/v1/inbound", b"TSX1", "th-rayong", space.node_keys["my-kuantan"]
    )
    impostor["X-Trustspace-Key-Id"] = space.node_keys["th-rayong"].key_id
    status, answer = _inbound(space, b"TSX1", {**FRAME, **impostor})
    assert (status, answer["code"]) == (401, "bad_signature")
    actions = [
        e["action"] for e in space.audit_events("cn-nanning").values() if e["actor"] == "th-rayong"
    ]
    assert actions.count("transfer.rejected") >= 3
    assert space._agent_up("cn-nanning")


def test_forged_approval_is_refused_and_audited(space: GatewayHarness) -> None:
    from trustspace.crypto import SM2PrivateKey
    from trustspace_agent.gateway.approvals import sign_approval

    _, held = space.transfer("my-kuantan", "cn-nanning", "internal", ["trade"])
    tid = held["id"]
    approver = "my-national-security-assessor"
    # A key nobody registered for this approver.
    status, answer = space.approve("my-kuantan", tid, approver, key=SM2PrivateKey.generate())
    assert (status, answer["code"], answer["field"]) == (403, "unknown_approver_key", "keyId")
    # The registered key id with someone else's signature.
    forged = sign_approval(
        SM2PrivateKey.generate(), tid, approver, "approve", held["payloadDigest"]
    )
    forged["keyId"] = space.approver_keys[approver].key_id
    status, answer = space.call("my-kuantan", "POST", f"/v1/reviews/{tid}/approvals", forged)
    assert (status, answer["code"], answer["field"]) == (401, "bad_approval_signature", "signature")
    # An approval for other content.
    other = sign_approval(space.approver_keys[approver], tid, approver, "approve", "0" * 64)
    status, answer = space.call("my-kuantan", "POST", f"/v1/reviews/{tid}/approvals", other)
    assert (status, answer["code"]) == (409, "digest_mismatch")
    status, answer = space.call("my-kuantan", "POST", "/v1/reviews/tr-nope/approvals", other)
    assert (status, answer["code"]) == (404, "not_found")
    assert space.audit_actions("my-kuantan", tid).count("transfer.approval_refused") == 3
    assert space.inbox("cn-nanning", tid)[0] == 404
    assert space.call("my-kuantan", "GET", f"/v1/reviews/{tid}")[1]["state"] == "Held"
