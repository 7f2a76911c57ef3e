"""Errors with a machine-readable ``code`` that the collector returns as-is in JSON."""

from __future__ import annotations


class AuditError(ValueError):
    """A rejected audit record; ``code`` is stable (for machines), ``message`` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}
