"""The gateway's part of the agent configuration (``gateway:`` in the agent YAML).

The agent runs without it (audit only, as before); with it the node also enforces transfer
policies: ``POST /v1/transfers`` on the local API, ``POST /v1/inbound`` on an HTTPS port
that peers' gateways deliver to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class GatewayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    policy_bundle_file: Path = Field(alias="policyBundleFile")
    """Signed policy bundle envelope (the hub's ConfigMap, mounted); re-read when it changes."""
    trust_bundle_file: Path = Field(alias="trustBundleFile")
    """Signed trust bundle: every node's SM2 public keys, the hub's among them."""
    hub_public_key_file: Path = Field(alias="hubPublicKeyFile")
    """Pinned hub public key (PEM): anchors the trust bundle, which in turn names the hub
    keys allowed to sign policy bundles."""
    inbound_port: Annotated[int, Field(ge=0, le=65535)] = Field(default=8781, alias="inboundPort")
    inbound_host: str = Field(default="0.0.0.0", alias="inboundHost")  # noqa: S104 - peers connect
    tls_cert_file: Path = Field(alias="tlsCertFile")
    tls_key_file: Path = Field(alias="tlsKeyFile")
    peer_ca_file: Path | None = Field(default=None, alias="peerCaFile")
    """CA of the peers' gateway certificates; default: the agent's ``caFile``."""
    peers: dict[str, str] = Field(default_factory=dict)
    """Gateway URL of every node this one delivers to, e.g. ``cn-nanning: https://...:8781``."""
    certifications: list[str] = Field(default_factory=list)
    """Certifications this node holds as a recipient (e.g. ``apec-cbpr``); inbound checks use
    these, never what the sender claims."""
    approver_keys_file: Path | None = Field(default=None, alias="approverKeysFile")
    """YAML ``{approver name: [public key PEM, ...]}``: whose SM2 signature counts as whose
    approval (B5)."""
    caller_tokens_file: Path | None = Field(default=None, alias="callerTokensFile")
    """YAML ``{caller name: [SM3 hex digest of a token, ...]}`` (a mounted Secret): callers of
    the local API authenticate with ``Authorization: Bearer <token>``. Without it only
    loopback callers are served, all as ``local`` (see ``trustspace_agent.gateway.callers``)."""
    secrets_dir: Path | None = Field(default=None, alias="secretsDir")
    """Mounted Secrets, ``<dir>/<secret name>/<key>``: pseudonymisation keys (B6)."""
    state_dir: Path = Field(alias="stateDir")
    """Held transfers (review) and the inbox live here (SQLite)."""
    max_payload_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=8 * 1024 * 1024, alias="maxPayloadBytes"
    )
    link_report_seconds: Annotated[float, Field(gt=0)] = Field(
        default=10.0, alias="linkReportSeconds"
    )
    """Period of link-status reports to the hub (a trip is reported at once)."""
    delivery_timeout_seconds: Annotated[float, Field(gt=0)] = Field(
        default=30.0, alias="deliveryTimeoutSeconds"
    )
    review_sweep_seconds: Annotated[float, Field(gt=0)] = Field(
        default=5.0, alias="reviewSweepSeconds"
    )
