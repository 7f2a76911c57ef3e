"""Mounted files (keys, trust and policy bundles) are re-checked at most once a second.

Each check is a ``stat`` of a resolved symlink path (several syscalls); per transfer that
was a fifth of the gateway's CPU. A second of staleness is far below how fast a
ConfigMap or Secret update reaches a pod anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K")


class Throttled(Generic[T]):
    def __init__(self, fn: Callable[[], T], period: float = 1.0) -> None:
        self._fn = fn
        self._period = period
        self._at = -period
        self._value: T | None = None

    def __call__(self) -> T:
        now = time.monotonic()
        if self._value is None or now - self._at >= self._period:
            self._value = self._fn()
            self._at = now
        return self._value


class TtlCache(Generic[K, T]):
    """Results of ``fn(key)`` for ``period`` seconds (e.g. a sender's parsed public key)."""

    def __init__(self, fn: Callable[[K], T], period: float = 1.0, limit: int = 4096) -> None:
        self._fn = fn
        self._period = period
        self._limit = limit
        self._items: dict[K, tuple[float, T]] = {}

    def __call__(self, key: K) -> T:
        now = time.monotonic()
        hit = self._items.get(key)
        if hit is not None and now - hit[0] < self._period:
            return hit[1]
        value = self._fn(key)
        if len(self._items) >= self._limit:
            self._items.clear()
        self._items[key] = (now, value)
        return value
