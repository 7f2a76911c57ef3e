"""The data circuit breaker (B8, 数据熔断), one per link and one per caller.

A breaker trips (``Open``) on a burst of denied transfers, on invalid signatures, or on a
volume far above its moving average, with thresholds from the policy bundle's
``circuitBreaker`` settings of the policies that govern the flow. While open, transfers are
refused. After ``coolDown`` an ``Automatic`` breaker lets one probe through (``HalfOpen``):
a probe that completes closes it, one that fails opens it again. A ``Manual`` breaker waits
for ``POST /v1/links/{name}/reset``.

Pure logic with an injected clock (seconds), so the thresholds are unit-testable; the
gateway does the side effects (audit events, hub reports) for the :class:`Trip` it is given.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustspace import clock
from trustspace.api.common import parse_duration

CLOSED, OPEN, HALF_OPEN = "Closed", "Open", "HalfOpen"
#: Volume below this never counts as a spike: a link idle for a day is not attacked by 1 KiB.
MIN_SPIKE_BYTES = 64 * 1024


def _seconds(value: Any, default: float) -> float:
    if not isinstance(value, str):
        return default
    try:
        return parse_duration(value).total_seconds()
    except ValueError:
        return default


@dataclass(frozen=True)
class BreakerSettings:
    """Defaults are the TransferPolicy schema's."""

    enabled: bool = True
    denied_count: int = 20
    denied_window: float = 60.0
    invalid_count: int = 3
    invalid_window: float = 600.0
    spike_ratio: float = 5.0
    spike_window: float = 300.0
    baseline_window: float = 86400.0
    cool_down: float = 900.0
    manual: bool = False

    @classmethod
    def of(cls, cb: Mapping[str, Any]) -> BreakerSettings:
        d = cls()
        denied = cb.get("deniedBurst") or {}
        invalid = cb.get("invalidSignatures") or {}
        spike = cb.get("volumeSpike") or {}
        return cls(
            enabled=bool(cb.get("enabled", True)),
            denied_count=int(denied.get("count", d.denied_count)),
            denied_window=_seconds(denied.get("window"), d.denied_window),
            invalid_count=int(invalid.get("count", d.invalid_count)),
            invalid_window=_seconds(invalid.get("window"), d.invalid_window),
            spike_ratio=int(spike.get("ratioPercent", 500)) / 100,
            spike_window=_seconds(spike.get("window"), d.spike_window),
            baseline_window=_seconds(spike.get("baselineWindow"), d.baseline_window),
            cool_down=_seconds(cb.get("coolDown"), d.cool_down),
            manual=cb.get("resume") == "Manual",
        )

    @classmethod
    def strictest(cls, many: Iterable[Mapping[str, Any]]) -> BreakerSettings:
        """Several policies govern a flow: every one of their thresholds applies."""
        parsed = [cls.of(cb) for cb in many]
        enabled = [s for s in parsed if s.enabled]
        if not parsed:
            return cls()
        if not enabled:
            return cls(enabled=False)
        return cls(
            enabled=True,
            denied_count=min(s.denied_count for s in enabled),
            denied_window=max(s.denied_window for s in enabled),
            invalid_count=min(s.invalid_count for s in enabled),
            invalid_window=max(s.invalid_window for s in enabled),
            spike_ratio=min(s.spike_ratio for s in enabled),
            spike_window=min(s.spike_window for s in enabled),
            baseline_window=max(s.baseline_window for s in enabled),
            cool_down=max(s.cool_down for s in enabled),
            manual=any(s.manual for s in enabled),
        )


@dataclass(frozen=True)
class Trip:
    breaker: Breaker
    reason: str
    message: str


@dataclass(frozen=True)
class Refusal:
    kind: str
    name: str
    state: str
    reason: str
    message: str
    resume_at: float | None


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return clock.from_epoch(t)


@dataclass
class Breaker:
    kind: str
    """``link`` or ``caller``."""
    name: str
    settings: BreakerSettings = field(default_factory=BreakerSettings)
    state: str = CLOSED
    tripped_at: float | None = None
    reason: str | None = None
    message: str | None = None
    resume_at: float | None = None
    trips: int = 0
    probing: bool = False
    allowed: int = 0
    denied: int = 0
    in_review: int = 0
    bytes: int = 0
    last_transfer: float | None = None
    first_seen: float | None = None
    _denied_at: deque[float] = field(default_factory=deque)
    _invalid_at: deque[float] = field(default_factory=deque)
    _minutes: deque[list[float]] = field(default_factory=deque)
    """[minute start, bytes] buckets over the baseline window."""

    # --- admission ---------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """After the cool-down an automatic breaker goes half-open."""
        if self.state == OPEN and self.resume_at is not None and now >= self.resume_at:
            self.state, self.probing = HALF_OPEN, False

    def admit(self, now: float) -> Refusal | None:
        """None when a transfer may go; a :class:`Refusal` while the breaker is open."""
        self.tick(now)
        if self.state == OPEN:
            return self._refusal(f"circuit breaker of {self.kind} {self.name} is open")
        if self.state == HALF_OPEN:
            if self.probing:
                return self._refusal(
                    f"circuit breaker of {self.kind} {self.name} is half-open: a probe is in flight"
                )
            self.probing = True
        return None

    def _refusal(self, text: str) -> Refusal:
        detail = f"{text} since {_iso(self.tripped_at)} ({self.reason}: {self.message})"
        if self.resume_at is not None:
            detail += f"; it probes again at {_iso(self.resume_at)}"
        else:
            detail += "; it needs a manual reset (trustspace links reset)"
        return Refusal(self.kind, self.name, self.state, self.reason or "", detail, self.resume_at)

    def finish_probe(self, ok: bool, now: float) -> Trip | None:
        """The outcome of a transfer admitted while half-open."""
        if self.state != HALF_OPEN:
            return None
        self.probing = False
        if ok:
            self.state, self.resume_at = CLOSED, None
            self._denied_at.clear()
            self._invalid_at.clear()
            return None
        return self._trip(now, "ProbeFailed", "the probe after the cool-down failed")

    # --- observations ------------------------------------------------------------------

    def _seen(self, now: float) -> None:
        if self.first_seen is None:
            self.first_seen = now

    def record_denied(self, now: float) -> Trip | None:
        self._seen(now)
        self.denied += 1
        s = self.settings
        if not s.enabled:
            return None
        q = self._denied_at
        q.append(now)
        while q and q[0] <= now - s.denied_window:
            q.popleft()
        if len(q) >= s.denied_count and self.state != OPEN:
            return self._trip(
                now,
                "DeniedBurst",
                f"{len(q)} denied transfers within {s.denied_window:g}s "
                f"(threshold {s.denied_count})",
            )
        return None

    def record_invalid_signature(self, now: float) -> Trip | None:
        self._seen(now)
        s = self.settings
        if not s.enabled:
            return None
        q = self._invalid_at
        q.append(now)
        while q and q[0] <= now - s.invalid_window:
            q.popleft()
        if len(q) >= s.invalid_count and self.state != OPEN:
            return self._trip(
                now,
                "InvalidSignatures",
                f"{len(q)} invalid signatures within {s.invalid_window:g}s "
                f"(threshold {s.invalid_count})",
            )
        return None

    def record_transfer(self, now: float, size: int) -> Trip | None:
        """A transfer that crossed: counters, then the volume-spike check."""
        self._seen(now)
        self.allowed += 1
        self.bytes += size
        self.last_transfer = now
        s = self.settings
        minute = now - now % 60
        if self._minutes and self._minutes[-1][0] == minute:
            self._minutes[-1][1] += size
        else:
            self._minutes.append([minute, float(size)])
        while self._minutes and self._minutes[0][0] <= now - s.baseline_window:
            self._minutes.popleft()
        if not s.enabled or self.state == OPEN:
            return None
        return self._spike(now)

    def _spike(self, now: float) -> Trip | None:
        s = self.settings
        assert self.first_seen is not None
        history = min(s.baseline_window, now - self.first_seen) - s.spike_window
        if history < s.spike_window:
            return None  # not one full window of history yet: no average to compare with
        recent = sum(b for m, b in self._minutes if m > now - s.spike_window)
        older = sum(b for m, b in self._minutes if m <= now - s.spike_window)
        average = older * s.spike_window / history
        if recent >= MIN_SPIKE_BYTES and recent > s.spike_ratio * average:
            return self._trip(
                now,
                "VolumeSpike",
                f"{int(recent)} bytes in {s.spike_window:g}s is over {s.spike_ratio:g}x "
                f"the moving average of {int(average)}",
            )
        return None

    # --- transitions -------------------------------------------------------------------

    def _trip(self, now: float, reason: str, message: str) -> Trip:
        self.state = OPEN
        self.probing = False
        self.tripped_at, self.reason, self.message = now, reason, message
        self.resume_at = None if self.settings.manual else now + self.settings.cool_down
        self.trips += 1
        return Trip(self, reason, message)

    def trip_manually(self, now: float, message: str) -> Trip:
        return self._trip(now, "ManualTrip", message)

    def reset(self) -> None:
        self.state, self.probing, self.resume_at = CLOSED, False, None
        self._denied_at.clear()
        self._invalid_at.clear()

    # --- status ------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The MirrorLink status fields this breaker stands for (camelCase, as the CRD)."""
        cb: dict[str, Any] = {"state": self.state, "trips": self.trips}
        for key, value in (
            ("trippedAt", _iso(self.tripped_at)),
            ("reason", self.reason),
            ("message", self.message),
            ("resumeAt", _iso(self.resume_at) if self.state != CLOSED else None),
        ):
            if value is not None:
                cb[key] = value
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "transfers": {
                "allowed": self.allowed,
                "denied": self.denied,
                "inReview": self.in_review,
            },
            "bytesTransferred": self.bytes,
            "circuitBreaker": cb,
        }
        if self.last_transfer is not None:
            out["lastSyncTime"] = _iso(self.last_transfer)
        return out

    def persistent(self) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            for k in (
                "kind",
                "name",
                "state",
                "tripped_at",
                "reason",
                "message",
                "resume_at",
                "trips",
                "allowed",
                "denied",
                "bytes",
                "last_transfer",
            )
        }


class BreakerBoard:
    """All breakers of one gateway, by (kind, name). Open breakers survive a restart: a
    restart must not be a way round a trip."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self.breakers: dict[tuple[str, str], Breaker] = {}
        if path is not None and path.exists():
            for item in json.loads(path.read_text()):
                b = Breaker(item["kind"], item["name"])
                for k, v in item.items():
                    setattr(b, k, v)
                if b.state == HALF_OPEN:
                    b.state = OPEN
                self.breakers[(b.kind, b.name)] = b

    def get(self, kind: str, name: str, settings: BreakerSettings | None = None) -> Breaker:
        b = self.breakers.get((kind, name))
        if b is None:
            b = self.breakers[(kind, name)] = Breaker(kind, name)
        if settings is not None:
            b.settings = settings
        return b

    def links(self) -> list[Breaker]:
        return [b for (kind, _), b in sorted(self.breakers.items()) if kind == "link"]

    def save(self) -> None:
        if self._path is None:
            return
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps([b.persistent() for b in self.breakers.values()]))
        tmp.replace(self._path)
