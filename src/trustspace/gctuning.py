"""Garbage-collector settings for the long-running servers (agent, collector, operator).

A gateway transfer allocates thousands of short-lived objects; with CPython's default
thresholds (700, 10, 10) the cyclic collector ran every few transfers and its full passes
walked the whole startup heap (pydantic schemas, aiohttp, cryptography): ``perf`` put
``gc_collect_main`` and its visitors at 7-8% of the source gateway's CPU. Freezing what
exists once the server is up takes the startup heap out of every pass (it lives as long as
the process anyway), and larger thresholds let short-lived objects die by reference count
before any pass looks at them. Reference cycles are still collected, only less often.
"""

from __future__ import annotations

import gc

#: Young-generation allocations between passes, and the older generations' ratios.
THRESHOLDS = (20_000, 50, 100)


def settle_heap() -> None:
    """Call once the server has started: collect the startup garbage, freeze the rest into
    the permanent generation, and raise the collection thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
