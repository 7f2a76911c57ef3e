"""The agent's configuration file (YAML), as the operator renders it into a ConfigMap."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field

from trustspace_agent.gateway_config import GatewayConfig


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    node: str
    store_path: Path = Field(alias="storePath")
    store_max_bytes: Annotated[int, Field(ge=64 * 1024)] = Field(
        default=1 << 30, alias="storeMaxBytes"
    )
    key_file: Path = Field(alias="keyFile")
    """SM2 private key PEM (the node's key Secret, mounted)."""
    collector_url: str = Field(alias="collectorUrl")
    ca_file: Path = Field(alias="caFile")
    """CA that signed the collector's TLS certificate."""
    batch_max_events: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=2000, alias="batchMaxEvents"
    )
    """Under load; a quiet node seals what it has every ``batchMaxDelayMs``. Each batch costs
    two SM2 signatures at the edge, two verifications at the hub, three commits and a request:
    2000 events per batch took ~3 µs of CPU per event off each side against 500."""
    batch_max_delay_ms: Annotated[int, Field(ge=1)] = Field(default=200, alias="batchMaxDelayMs")
    ship_window: Annotated[int, Field(ge=1, le=16)] = Field(default=3, alias="shipWindow")
    """Batches in flight to the hub at once (1: wait for each acknowledgement)."""
    heartbeat_seconds: Annotated[float, Field(gt=0)] = Field(default=10.0, alias="heartbeatSeconds")
    listen_host: str = Field(default="127.0.0.1", alias="listenHost")
    listen_port: Annotated[int, Field(ge=0, le=65535)] = Field(default=8780, alias="listenPort")
    backoff_initial_seconds: Annotated[float, Field(gt=0)] = Field(
        default=0.2, alias="backoffInitialSeconds"
    )
    backoff_max_seconds: Annotated[float, Field(gt=0)] = Field(
        default=15.0, alias="backoffMaxSeconds"
    )
    request_timeout_seconds: Annotated[float, Field(gt=0)] = Field(
        default=30.0, alias="requestTimeoutSeconds"
    )
    policy_version: Annotated[int, Field(ge=0)] = Field(default=0, alias="policyVersion")
    """Version of the policy bundle in force, reported in heartbeats and events."""
    gateway: GatewayConfig | None = None
    """The transfer gateway (issue 7); absent: the agent only keeps and ships audit events."""

    @classmethod
    def load(cls, path: Path) -> AgentConfig:
        return cls.model_validate(yaml.safe_load(path.read_text()))
