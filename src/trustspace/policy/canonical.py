"""Canonical JSON for everything the policy core hashes or signs.

Sorted keys, no whitespace, UTF-8 without escapes, no floats: `trustspace.canonical`, the
encoding audit records use too, so any verifier that can hash an audit record can hash a
bundle.
"""

from __future__ import annotations

from typing import Any

from trustspace.canonical import canonical_json
from trustspace.crypto import sm3

__all__ = ["canonical_json", "sm3_hex"]


def sm3_hex(value: Any) -> str:
    """SM3 of the canonical encoding of `value`, as 64 hex digits (B3)."""
    return sm3(canonical_json(value)).hex()
