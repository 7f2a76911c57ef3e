"""Audit refusals: a machine-readable ``code`` the collector returns as-is in JSON, with the
HTTP status the hub answers it with (agents retry or stop by it)."""

from __future__ import annotations

from trustspace.refusal import HttpRefusal

# Status codes per rejection: 401 = who you are is not proven, 403 = you may not, 409 = the
# batch does not fit the hub's record, 400 = the request itself is wrong.
STATUS = {
    "missing_auth": 401,
    "stale_timestamp": 401,
    "replayed_nonce": 401,
    "bad_signature": 401,
    "unknown_node": 403,
    "unknown_key": 403,
    "key_retired": 403,
    "key_not_yet_valid": 403,
    "node_mismatch": 403,
    "gap": 409,
    "fork": 409,
    "chain_mismatch": 409,
    "prev_batch_mismatch": 409,
    "stale_state": 409,
}


class AuditError(HttpRefusal, ValueError):
    """A rejected audit record; ``code`` is stable (for machines), ``message`` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(STATUS.get(code, 400), code, message)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
