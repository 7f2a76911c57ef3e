"""Multi-party review of held transfers (B5, B7): signed approvals, N-of-M per group.

A transfer whose decision is ``review`` is protected (desensitised, SM4-GCM for the
destination) and held at the source (:mod:`.held_store`): the privacy-sandbox channel. It is
never forwarded until every approval group of its decision is met. Approvers sign

    canonical JSON {type, transferId, approver, decision, payloadDigest, signedAt}

with an SM2 key registered for their name (``approverKeysFile``), so an approval is
evidence on its own (B5): the signed approvals travel with the transfer and the destination
checks them again. ``payloadDigest`` (SM3 of what will be delivered) binds an approval to
the content the approver saw.

A group fails when fewer approvers than it needs are left who have not rejected; then the
transfer is rejected. When the first approval timeout passes, it expires. Either way the
ciphertext is deleted. This module holds the signing, checking and counting of approvals.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trustspace import clock
from trustspace.audit.canonical import canonical_json
from trustspace.crypto import CryptoError, InvalidSignature, SM2PrivateKey, SM2PublicKey
from trustspace.refusal import HttpRefusal

APPROVAL_TYPE = "trustspace.io/approval/v1"


class ApprovalError(HttpRefusal):
    """An approval that does not count; ``status`` is the HTTP answer."""


def approval_message(
    transfer_id: str, approver: str, decision: str, digest: str, signed_at: str
) -> bytes:
    return canonical_json(
        {
            "type": APPROVAL_TYPE,
            "transferId": transfer_id,
            "approver": approver,
            "decision": decision,
            "payloadDigest": digest,
            "signedAt": signed_at,
        }
    )


def sign_approval(
    key: SM2PrivateKey, transfer_id: str, approver: str, decision: str, digest: str
) -> dict[str, Any]:
    """What an approver (or ``trustspace reviews approve``) posts."""
    signed_at = clock.rfc3339()
    message = approval_message(transfer_id, approver, decision, digest, signed_at)
    return {
        "approver": approver,
        "decision": decision,
        "payloadDigest": digest,
        "signedAt": signed_at,
        "keyId": key.key_id,
        "signature": base64.b64encode(key.sign(message)).decode(),
    }


class ApproverKeys:
    """``{approver name: [public key PEM, ...]}`` from a YAML file, re-read when it changes."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._stamp: tuple[int, int, int] | None = None
        self._keys: dict[str, dict[str, SM2PublicKey]] = {}

    def keys_of(self, name: str) -> dict[str, SM2PublicKey]:
        if self._path is None:
            return {}
        st = self._path.resolve().stat()
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp != self._stamp:
            raw = yaml.safe_load(self._path.read_text()) or {}
            keys: dict[str, dict[str, SM2PublicKey]] = {}
            for approver, pems in raw.items():
                items = [pems] if isinstance(pems, str) else list(pems)
                parsed = [SM2PublicKey.from_pem(p) for p in items]
                keys[str(approver)] = {k.key_id: k for k in parsed}
            self._keys, self._stamp = keys, stamp
        return self._keys.get(name, {})


def group_approvers(groups: list[dict[str, Any]]) -> set[str]:
    return {a["name"] for g in groups for a in g["approvers"]}


def verify_approval(
    approval: Any, transfer_id: str, digest: str, groups: list[dict[str, Any]], keys: ApproverKeys
) -> dict[str, Any]:
    """The approval in canonical form, or :class:`ApprovalError` saying precisely why not."""
    if not isinstance(approval, dict):
        raise ApprovalError(400, "malformed_approval", "an approval is a JSON object")
    fields = ("approver", "decision", "payloadDigest", "signedAt", "keyId", "signature")
    for name in fields:
        if not isinstance(approval.get(name), str) or not approval[name]:
            raise ApprovalError(400, "missing_field", f"approval needs {name} (string)", name)
    approver, decision = approval["approver"], approval["decision"]
    if decision not in ("approve", "reject"):
        raise ApprovalError(400, "invalid_field", "decision must be approve or reject", "decision")
    if approver not in group_approvers(groups):
        raise ApprovalError(
            403,
            "not_an_approver",
            f"{approver!r} is not an approver of transfer {transfer_id}",
            "approver",
        )
    if approval["payloadDigest"] != digest:
        raise ApprovalError(
            409, "digest_mismatch", "the approval is for different content", "payloadDigest"
        )
    registered = keys.keys_of(approver)
    key = registered.get(approval["keyId"])
    if key is None:
        raise ApprovalError(
            403,
            "unknown_approver_key",
            f"key {approval['keyId'][:16]} is not registered for approver {approver!r}",
            "keyId",
        )
    message = approval_message(
        transfer_id, approver, decision, approval["payloadDigest"], approval["signedAt"]
    )
    try:
        key.verify(message, base64.b64decode(approval["signature"], validate=True))
    except (InvalidSignature, CryptoError, binascii.Error, ValueError):
        raise ApprovalError(
            401,
            "bad_approval_signature",
            f"the signature of {approver!r} does not verify",
            "signature",
        ) from None
    return {k: approval[k] for k in fields}


@dataclass(frozen=True)
class Progress:
    met: bool
    failed: str | None
    summary: list[dict[str, Any]]


def progress(groups: list[dict[str, Any]], approvals: list[dict[str, Any]]) -> Progress:
    """Every group on its own: a Vietnamese 2-of-2 is not met by a policy's approvers."""
    approved = {a["approver"] for a in approvals if a["decision"] == "approve"}
    rejected = {a["approver"] for a in approvals if a["decision"] == "reject"}
    summary = []
    failed = None
    for g in groups:
        names = [a["name"] for a in g["approvers"]]
        have = sorted(approved & set(names))
        left = len(names) - len(rejected & set(names))
        summary.append({"approvers": names, "minApprovals": g["minApprovals"], "approvedBy": have})
        if left < g["minApprovals"] and failed is None:
            failed = f"approval by {g['minApprovals']} of {', '.join(names)} can no longer be met"
    met = failed is None and all(len(s["approvedBy"]) >= s["minApprovals"] for s in summary)
    return Progress(met, failed, summary)
