"""Agent liveness from heartbeats: the data behind the DataSpaceNode ``AgentReady`` condition.

The agent posts a heartbeat every ``interval`` seconds; the collector stores the time. The
operator calls :func:`agent_ready` when it reconciles: ``True`` while heartbeats arrive,
``Unknown`` once none came for :data:`MISSED_HEARTBEATS` intervals (a silent agent may be
partitioned rather than dead, so the condition is Unknown, not False).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

MISSED_HEARTBEATS = 3


@dataclass(frozen=True)
class AgentReadiness:
    status: Literal["True", "Unknown"]
    reason: str
    message: str


def agent_ready(
    last_heartbeat: dt.datetime | None, interval_seconds: float, now: dt.datetime
) -> AgentReadiness:
    if last_heartbeat is None:
        return AgentReadiness("Unknown", "NoHeartbeat", "the agent has not reported yet")
    silent = (now - last_heartbeat).total_seconds()
    limit = MISSED_HEARTBEATS * interval_seconds
    if silent > limit:
        return AgentReadiness(
            "Unknown",
            "HeartbeatMissed",
            f"no heartbeat for {silent:.0f}s "
            f"(more than {MISSED_HEARTBEATS} x {interval_seconds:g}s)",
        )
    return AgentReadiness("True", "HeartbeatReceived", f"last heartbeat {silent:.0f}s ago")
