"""What the collector learns about a node between two status writes: audit progress,
heartbeats, and changes of its audit stream, merged into one :class:`NodeUpdate`."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from trustspace import clock

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
#: Stream changes kept between two writes of a node (a flapping stream stays bounded).
MAX_STREAMING_CHANGES = 8


@dataclass(frozen=True)
class AuditProgress:
    last_sequence: int
    last_event_time: str | None
    lag_seconds: float | None


@dataclass(frozen=True)
class Heartbeat:
    """What an agent reported in one heartbeat (fields it did not send are None)."""

    at: str
    last_seq: int | None = None
    acked_seq: int | None = None
    backpressure: bool | None = None
    buffer_used_bytes: int | None = None
    buffer_max_bytes: int | None = None
    policy_version: int | None = None
    policy_hash: str | None = None
    policy_applied_at: str | None = None
    trust_bundle_hash: str | None = None

    @property
    def buffered_records(self) -> int | None:
        if self.last_seq is None or self.acked_seq is None:
            return None
        return max(0, self.last_seq - self.acked_seq)

    @classmethod
    def parse(cls, body: bytes, at: str) -> Heartbeat:
        """Lenient: a field of the wrong type is ignored, never an error (the body is signed
        by the node, but an older agent may send less)."""
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return cls(at)
        if not isinstance(data, dict):
            return cls(at)

        def count(name: str, src: dict[str, Any] = data) -> int | None:
            v = src.get(name)
            return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None

        def digest(name: str, src: dict[str, Any]) -> str | None:
            v = src.get(name)
            return v if isinstance(v, str) and _HEX64.match(v) else None

        policy = data.get("policyBundle")
        policy = policy if isinstance(policy, dict) else {}
        applied = policy.get("appliedAt")
        backpressure = data.get("backpressure")
        return cls(
            at=at,
            last_seq=count("lastSeq"),
            acked_seq=count("ackedSeq"),
            backpressure=backpressure if isinstance(backpressure, bool) else None,
            buffer_used_bytes=count("bufferUsedBytes"),
            buffer_max_bytes=count("bufferMaxBytes"),
            policy_version=count("version", policy),
            policy_hash=digest("hash", policy),
            policy_applied_at=applied if isinstance(applied, str) and _is_time(applied) else None,
            trust_bundle_hash=digest("trustBundleHash", data),
        )


@dataclass(frozen=True)
class Streaming:
    ok: bool
    reason: str
    message: str
    at: dt.datetime | None = None
    """When the collector saw it (the condition's transition time, even if written later)."""


@dataclass(frozen=True)
class NodeUpdate:
    """What changed for one node since its last write."""

    progress: AuditProgress | None = None
    heartbeat: Heartbeat | None = None
    streaming: tuple[Streaming, ...] = ()
    """AuditStreaming changes in order (the condition takes the last; each failure gets its
    Event). At most :data:`MAX_STREAMING_CHANGES`, the newest."""

    def merge(self, other: NodeUpdate) -> NodeUpdate:
        return NodeUpdate(
            progress=other.progress or self.progress,
            heartbeat=other.heartbeat or self.heartbeat,
            streaming=(self.streaming + other.streaming)[-MAX_STREAMING_CHANGES:],
        )


def reason_of(code: str) -> str:
    """Machine code ``bad_signature`` -> condition reason ``BadSignature``."""
    return "".join(part.capitalize() for part in code.split("_"))


def _is_time(value: str) -> bool:
    try:
        clock.parse(value)
    except ValueError:
        return False
    return True
