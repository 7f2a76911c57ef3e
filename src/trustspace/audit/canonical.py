"""The audit records' byte encoding: the shared canonical JSON (trustspace.canonical)."""

from trustspace.canonical import canonical_json

__all__ = ["canonical_json"]
