"""Canonical JSON: the only byte encoding that is hashed or signed.

Sorted keys, no whitespace, UTF-8 (no ``\\u`` escapes for non-ASCII), no floats. Two
implementations that agree on these rules produce identical bytes, so the agent, the
collector and an offline verifier agree on every hash without sharing code.

Encoding runs in orjson (several times faster than :mod:`json`, and on every gateway
transfer and audit event); :func:`reference_json` is the same encoding through :mod:`json`,
used for what orjson refuses (integers beyond 64 bits) and by the tests that hold the two to
identical bytes.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_SORT_KEYS


def _reject_float(value: Any) -> Any:
    raise TypeError(f"canonical JSON does not encode {type(value).__name__}")


def canonical_json(value: Any) -> bytes:
    """Deterministic encoding of JSON-compatible ``value`` (dicts, lists, str, int, bool, None)."""
    _check(value)
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError:
        # Integers beyond 64 bits, lone surrogates: json encodes the one and refuses the
        # other with its own exception, as before.
        return reference_json(value)


def reference_json(value: Any) -> bytes:
    """:func:`canonical_json` through the standard library (no float check)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_reject_float
    ).encode("utf-8")


_SCALARS = frozenset({str, int, bool, type(None)})


def _check(value: Any) -> None:
    # Floats have several textual forms across languages; integers and strings do not.
    # Exact types are tested first: this walk runs over every signed or hashed document.
    kind = type(value)
    if kind in _SCALARS:
        return
    if kind is dict or (kind not in (list, tuple) and isinstance(value, dict)):
        for key, item in value.items():
            if type(key) is not str and not isinstance(key, str):
                raise TypeError("canonical JSON object keys must be strings")
            if type(item) not in _SCALARS:
                _check(item)
    elif kind is list or kind is tuple or isinstance(value, list | tuple):
        for item in value:
            if type(item) not in _SCALARS:
                _check(item)
    elif isinstance(value, float):
        raise TypeError("canonical JSON does not encode floats")
    elif not isinstance(value, str | int):
        # orjson would write datetimes, UUIDs, dataclasses...; json refused them, and so do we.
        raise TypeError(f"canonical JSON does not encode {kind.__name__}")
