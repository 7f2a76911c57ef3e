"""Canonical JSON for everything the policy core hashes or signs.

Sorted keys, no whitespace, UTF-8 without escapes, no floats: the same rules as the audit
records' encoding, so any verifier that can hash an audit record can hash a bundle. Kept
here as its own few lines because the policy bundle must not depend on the audit package.
"""

from __future__ import annotations

import json
from typing import Any

from trustspace.crypto import sm3


def _reject(value: Any) -> Any:
    raise TypeError(f"canonical JSON does not encode {type(value).__name__}")


def _check(value: Any) -> None:
    # Floats have several textual forms across languages; integers and strings do not.
    if isinstance(value, float):
        raise TypeError("canonical JSON does not encode floats")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError("canonical JSON object keys must be strings")
            _check(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check(item)


def canonical_json(value: Any) -> bytes:
    _check(value)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_reject
    ).encode("utf-8")


def sm3_hex(value: Any) -> str:
    """SM3 of the canonical encoding of `value`, as 64 hex digits (B3)."""
    return sm3(canonical_json(value)).hex()
