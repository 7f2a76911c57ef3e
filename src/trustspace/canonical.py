"""Canonical JSON: the only byte encoding that is hashed or signed.

Sorted keys, no whitespace, UTF-8 (no ``\\u`` escapes for non-ASCII), no floats. Two
implementations that agree on these rules produce identical bytes, so the agent, the
collector and an offline verifier agree on every hash without sharing code.
"""

from __future__ import annotations

import json
from typing import Any


def _reject_float(value: Any) -> Any:
    raise TypeError(f"canonical JSON does not encode {type(value).__name__}")


def canonical_json(value: Any) -> bytes:
    """Deterministic encoding of JSON-compatible ``value`` (dicts, lists, str, int, bool, None)."""
    _check(value)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_reject_float
    ).encode("utf-8")


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
