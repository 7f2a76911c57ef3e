"""Fault injection for crash-safety tests: die at a named point of a multi-step operation.

`TRUSTSPACE_FAULT_POINTS=after-stage,before-promote` makes the operator SIGKILL itself the
first time it reaches any listed point. Unset in production, where this costs one lookup.
"""

from __future__ import annotations

import os
import signal

_ENV = "TRUSTSPACE_FAULT_POINTS"


def fault_point(name: str) -> None:
    points = os.environ.get(_ENV)
    if points and name in points.split(","):
        # A marker file lets a test see which point fired before the process vanished.
        marker = os.environ.get("TRUSTSPACE_FAULT_MARKER")
        if marker:
            with open(marker, "a") as f:  # noqa: PTH123 - the cheapest write before dying
                f.write(name + "\n")
        os.kill(os.getpid(), signal.SIGKILL)
