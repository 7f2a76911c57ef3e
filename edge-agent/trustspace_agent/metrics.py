"""Prometheus metrics of the agent, in their own registry (one agent per process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class AgentMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.appended = Counter(
            "trustspace_agent_audit_events_appended", "Audit events appended locally", registry=r
        )
        self.shipped = Counter(
            "trustspace_agent_audit_events_shipped", "Audit events sent to the hub", registry=r
        )
        self.acked_seq = Gauge(
            "trustspace_agent_audit_acked_seq", "Newest seq the hub holds durably", registry=r
        )
        self.acked = Counter(
            "trustspace_agent_audit_events_acked", "Audit events the hub acknowledged", registry=r
        )
        self.backlog = Gauge(
            "trustspace_agent_audit_backlog_events", "Events not yet acknowledged", registry=r
        )
        self.backpressure = Gauge(
            "trustspace_agent_audit_backpressure",
            "1 while the audit store is full and operations are refused",
            registry=r,
        )
        self.refused = Counter(
            "trustspace_agent_audit_appends_refused",
            "Appends refused under backpressure",
            registry=r,
        )
        self.rejected = Counter(
            "trustspace_agent_audit_batches_rejected",
            "Batches the hub rejected",
            ["code"],
            registry=r,
        )
