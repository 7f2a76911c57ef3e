"""Prometheus metrics of the operator: reconciles, errors, durations, key age, nodes by phase."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class OperatorMetrics:
    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )

    def __post_init__(self) -> None:
        r = self.registry
        self.reconciles = Counter(
            "trustspace_reconciles_total",
            "Node reconciles, by what caused them.",
            ["cause"],
            registry=r,
        )
        self.errors = Counter(
            "trustspace_reconcile_errors_total",
            "Failed reconciles, by kind of failure.",
            ["kind"],
            registry=r,
        )
        self.reconcile_seconds = Histogram(
            "trustspace_reconcile_duration_seconds",
            "Time one node reconcile took.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.key_age = Gauge(
            "trustspace_key_age_seconds",
            "Age of each node's active SM2 key.",
            ["namespace", "node"],
            registry=r,
        )
        self.nodes = Gauge("trustspace_nodes", "DataSpaceNodes by phase.", ["phase"], registry=r)
        self.rotations = Counter("trustspace_key_rotations_total", "SM2 key rotations.", registry=r)
        self.keys_issued = Counter(
            "trustspace_keys_issued_total", "First SM2 keys issued.", registry=r
        )
        self.drift_repairs = Counter(
            "trustspace_drift_repairs_total",
            "Owned objects restored after a change by hand.",
            registry=r,
        )
        self.bundles = Counter(
            "trustspace_trust_bundles_published_total",
            "Trust bundles signed and published.",
            registry=r,
        )


METRICS = OperatorMetrics()
