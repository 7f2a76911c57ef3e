"""Operator settings: flags and environment, read once at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum


class AgentRuntime(StrEnum):
    """Where agents run. `kubernetes`: the operator's StatefulSets (readiness counts ready
    replicas). `external`: agents run outside Kubernetes (the local quickstart), so readiness
    rests on heartbeats alone; the workload objects are still created."""

    KUBERNETES = "kubernetes"
    EXTERNAL = "external"


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


@dataclass
class OperatorConfig:
    agent_image: str = field(
        default_factory=lambda: os.environ.get(
            "TRUSTSPACE_AGENT_IMAGE", "ghcr.io/trustspace/trustspace-agent:0.1.0"
        )
    )
    agent_runtime: AgentRuntime = field(
        default_factory=lambda: AgentRuntime(
            os.environ.get("TRUSTSPACE_AGENT_RUNTIME", "kubernetes")
        )
    )
    #: Where agents send audit batches and heartbeats (the hub collector).
    collector_url: str = field(
        default_factory=lambda: os.environ.get(
            "TRUSTSPACE_COLLECTOR_URL", "https://trustspace-collector.trustspace-system.svc:8443"
        )
    )
    #: PEM file of the CA that signed the collector's TLS certificate; shipped to agents
    #: in the trust-bundle ConfigMap.
    collector_ca_file: str | None = field(
        default_factory=lambda: os.environ.get("TRUSTSPACE_COLLECTOR_CA_FILE") or None
    )
    #: Secret the collector's TLS serving pair is issued into, in each data space's namespace
    #: on the hub, by the data space's CA (tls/collector.py); None: bring your own pair.
    collector_tls_secret: str | None = field(
        default_factory=lambda: os.environ.get("TRUSTSPACE_COLLECTOR_TLS_SECRET") or None
    )
    #: Seconds between the sweeps over all nodes (rotation due, heartbeats, retries).
    tick: float = field(default_factory=lambda: _env_float("TRUSTSPACE_TICK", 10.0))
    #: Seconds between full re-applies of a node's objects when nothing asked for one.
    #: Local objects are also watched, so this mostly catches drift in remote clusters.
    resync: float = field(default_factory=lambda: _env_float("TRUSTSPACE_RESYNC", 120.0))
    #: Upper bound of the retry backoff for an unreachable edge cluster, seconds.
    max_backoff: float = field(default_factory=lambda: _env_float("TRUSTSPACE_MAX_BACKOFF", 60.0))
    #: Seconds a staged next key waits for the trust bundle before it is promoted anyway.
    publish_wait: float = field(default_factory=lambda: _env_float("TRUSTSPACE_PUBLISH_WAIT", 30.0))
    #: Heartbeats missed before AgentReady turns Unknown (the agent issue: within 3x).
    heartbeat_misses: float = 3.0
    #: Threads for sync handlers; API round trips, not CPU, bound a reconcile.
    workers: int = field(default_factory=lambda: int(os.environ.get("TRUSTSPACE_WORKERS", "16")))
    #: Namespaces the operator watches; empty means every namespace.
    namespaces: list[str] = field(
        default_factory=lambda: [
            n for n in os.environ.get("TRUSTSPACE_NAMESPACES", "").split(",") if n
        ]
    )
    #: Kubeconfig of the hub cluster; None means $KUBECONFIG, then in-cluster.
    kubeconfig: str | None = field(default_factory=lambda: os.environ.get("KUBECONFIG") or None)


CONFIG = OperatorConfig()
