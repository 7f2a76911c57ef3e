"""The agent's configuration document (its ConfigMap) and the digest that rolls the agents
when it changes: every path in it is a volume of the StatefulSet (statefulset.py)."""

from __future__ import annotations

from typing import Any

import yaml

from trustspace.api.common import parse_duration, parse_quantity
from trustspace.api.dataspacenode import DataSpaceNode
from trustspace.crypto import sm3
from trustspace.kube import Obj
from trustspace_operator.peers import GatewayView
from trustspace_operator.render.constants import (
    API_PORT,
    APPROVERS_KEY,
    BUNDLE_DIR,
    CALLERS_DIR,
    CALLERS_KEY,
    COLLECTOR_CA_KEY,
    DATA_DIR,
    GATEWAY_CA_KEY,
    GATEWAY_PORT,
    KEY_DIR,
    POLICY_BUNDLE_KEY,
    SECRETS_DIR,
    TLS_DIR,
    TRUST_BUNDLE_KEY,
)
from trustspace_operator.render.meta import Names, callers, object_meta


def gateway_settings(view: GatewayView, *, with_callers: bool = False) -> dict[str, Any]:
    """The ``gateway:`` section (trustspace_agent.gateway_config.GatewayConfig): every path
    is a volume of the StatefulSet, every peer a MirrorLink destination's endpoint."""
    settings: dict[str, Any] = {
        "policyBundleFile": f"{BUNDLE_DIR}/{POLICY_BUNDLE_KEY}",
        "trustBundleFile": f"{BUNDLE_DIR}/{TRUST_BUNDLE_KEY}",
        "hubPublicKeyFile": f"{BUNDLE_DIR}/hub.pem",
        "inboundHost": "0.0.0.0",  # noqa: S104 - inside the Pod; the Service is the door
        "inboundPort": GATEWAY_PORT,
        "tlsCertFile": f"{TLS_DIR}/tls.crt",
        "tlsKeyFile": f"{TLS_DIR}/tls.key",
        "peerCaFile": f"{BUNDLE_DIR}/{GATEWAY_CA_KEY}",
        "peers": dict(view.peers),
        "approverKeysFile": f"{BUNDLE_DIR}/{APPROVERS_KEY}",
        "secretsDir": SECRETS_DIR,
        "stateDir": f"{DATA_DIR}/gateway",
    }
    if with_callers:
        # Without it the agent serves loopback only: its own Pod, none of the node's apps.
        settings["callerTokensFile"] = f"{CALLERS_DIR}/{CALLERS_KEY}"
    return settings


def agent_settings(
    node: DataSpaceNode, collector_url: str, gateway: GatewayView | None = None
) -> dict[str, Any]:
    """The agent's configuration file (trustspace_agent.config.AgentConfig, camelCase)."""
    spec = node.spec
    buffer_bytes = int(parse_quantity(spec.agent.audit_buffer_size))
    settings: dict[str, Any] = {
        "node": node.name,
        "storePath": f"{DATA_DIR}/audit.db",
        # Headroom on the volume for SQLite's write-ahead log and checkpoints.
        "storeMaxBytes": buffer_bytes * 8 // 10,
        "keyFile": f"{KEY_DIR}/key.pem",
        "collectorUrl": collector_url,
        "caFile": f"{BUNDLE_DIR}/{COLLECTOR_CA_KEY}",
        "heartbeatSeconds": parse_duration(spec.agent.heartbeat_interval).total_seconds(),
        # The node's own apps call the local API from other Pods, so not loopback only.
        "listenHost": "0.0.0.0",  # noqa: S104 - inside the Pod
        "listenPort": API_PORT,
    }
    if spec.capabilities.gateway.enabled:
        settings["gateway"] = gateway_settings(
            gateway or GatewayView(), with_callers=bool(callers(node))
        )
    return settings


def agent_config(
    node: DataSpaceNode, collector_url: str, gateway: GatewayView | None = None
) -> Obj:
    text = yaml.safe_dump(agent_settings(node, collector_url, gateway), sort_keys=True)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(node, Names(node.name).agent_config),
        "data": {"agent.yaml": text},
    }


def config_hash(config_map: Obj) -> str:
    return sm3(str(config_map["data"]["agent.yaml"]).encode()).hex()[:32]
