"""SM2 request signatures, agent -> collector.

Each request carries the node name, key id, a timestamp (Unix seconds), a random nonce and an
SM2 signature over::

    TRUSTSPACE-SM2-V1\\n<METHOD>\\n<path with query>\\n<timestamp>\\n<nonce>\\n<hex SM3(body)>

The collector looks the key up in the trust bundle, rejects timestamps more than
:data:`MAX_SKEW_SECONDS` away from its clock and nonces it has seen within that window, so a
captured request cannot be replayed. TLS protects confidentiality; this proves who sent what.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections import OrderedDict

from trustspace.crypto import SM2PrivateKey, sm3

H_NODE = "X-Trustspace-Node"
H_KEY_ID = "X-Trustspace-Key-Id"
H_TIMESTAMP = "X-Trustspace-Timestamp"
H_NONCE = "X-Trustspace-Nonce"
H_SIGNATURE = "X-Trustspace-Signature"
MAX_SKEW_SECONDS = 300


def signing_input(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return "\n".join(
        ["TRUSTSPACE-SM2-V1", method.upper(), path, timestamp, nonce, sm3(body).hex()]
    ).encode()


def sign_request(
    method: str, path: str, body: bytes, node: str, key: SM2PrivateKey, now: float | None = None
) -> dict[str, str]:
    """Headers that authenticate one request from ``node``."""
    timestamp = str(int(now if now is not None else time.time()))
    nonce = secrets.token_hex(16)
    sig = key.sign(signing_input(method, path, timestamp, nonce, body))
    return {
        H_NODE: node,
        H_KEY_ID: key.key_id,
        H_TIMESTAMP: timestamp,
        H_NONCE: nonce,
        H_SIGNATURE: base64.b64encode(sig).decode(),
    }


class NonceCache:
    """Nonces seen in the last 2 x skew window; bounded so a flood cannot exhaust memory."""

    def __init__(self, window: float = 2 * MAX_SKEW_SECONDS, max_entries: int = 1_000_000) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._window = window
        self._max = max_entries

    def check_and_add(self, key: str, now: float) -> bool:
        """True if ``key`` is new (and remember it); False if it is a replay."""
        while self._seen:
            oldest, at = next(iter(self._seen.items()))
            if now - at <= self._window and len(self._seen) < self._max:
                break
            del self._seen[oldest]
        if key in self._seen:
            return False
        self._seen[key] = now
        return True
