"""Structured logs for every trustspace process: one JSON object a line, or human text on request.

`TRUSTSPACE_LOG_FORMAT=human` switches to text; `TRUSTSPACE_LOG_LEVEL` sets the level. A filter
blanks PEM private-key blocks in any record, so a key can never reach a log by accident.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import sys
from typing import Any, Literal

LogFormat = Literal["json", "human"]

_PRIVATE_PEM = re.compile(
    r"-----BEGIN (?:[A-Z0-9 ]*)PRIVATE KEY-----.*?-----END (?:[A-Z0-9 ]*)PRIVATE KEY-----",
    re.DOTALL,
)
_REDACTED = "[REDACTED PRIVATE KEY]"
# LogRecord attributes that are not user-supplied `extra` fields.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# kopf attaches its whole settings object to some records: noise, not context.
_DROP = {"settings", "k8s_skip"}


def redact(text: str) -> str:
    return _PRIVATE_PEM.sub(_REDACTED, text)


class RedactPrivateKeys(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "component": self.component,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in _DROP and not key.startswith("_"):
                doc[key] = (
                    value if isinstance(value, str | int | float | bool | None) else str(value)
                )
        if record.exc_info:
            doc["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(doc, ensure_ascii=False)


def configure(component: str, fmt: LogFormat | None = None, level: str | None = None) -> None:
    """Configure the root logger once for a process (operator, agent, collector)."""
    chosen = fmt or os.environ.get("TRUSTSPACE_LOG_FORMAT", "json")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactPrivateKeys())
    if chosen == "human":
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    else:
        handler.setFormatter(JsonFormatter(component))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((level or os.environ.get("TRUSTSPACE_LOG_LEVEL", "INFO")).upper())
