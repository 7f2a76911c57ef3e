"""The operator renders each agent's gateway: peers follow MirrorLinks, TLS pairs come from the
data space's gateway CA, approvers and the CA reach the trust ConfigMap, keys stay private."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509

from support.operator import OperatorRunner, apply, events_for, node_manifest, wait_for
from trustspace.crypto import SM2PrivateKey
from trustspace.kube import Kube
from trustspace.kube import kinds as k
from trustspace.localk8s import LocalCluster
from trustspace_agent.config import AgentConfig


def _agent_config(kube: Kube, ns: str, node: str) -> AgentConfig | None:
    cm = kube.get(k.CONFIG_MAP, f"{node}-agent-config", ns)
    if cm is None:
        return None
    return AgentConfig.model_validate(yaml.safe_load(cm["data"]["agent.yaml"]))


def _peers(kube: Kube, ns: str, node: str) -> dict[str, str] | None:
    config = _agent_config(kube, ns, node)
    return config.gateway.peers if config and config.gateway else None


def _link(ns: str, src: str, dst: str) -> dict[str, Any]:
    return {
        "apiVersion": "trustspace.io/v1alpha1",
        "kind": "MirrorLink",
        "metadata": {"name": f"{src}-to-{dst}", "namespace": ns},
        "spec": {
            "source": {"name": src},
            "destination": {"name": dst},
            "datasets": [
                {"name": "tracks", "classification": "internal", "categories": ["logistics"]}
            ],
            "policyRefs": [{"name": "logistics-auto"}],
        },
    }


def _template_hash(kube: Kube, ns: str, node: str) -> str:
    sts = kube.get(k.STATEFUL_SET, f"{node}-agent", ns) or {}
    meta = sts.get("spec", {}).get("template", {}).get("metadata", {})
    return str((meta.get("annotations") or {}).get("trustspace.io/config-hash", ""))


def _approvers(ns: str, pems: list[str]) -> dict[str, Any]:
    """The data space admin's ConfigMap of approvers' public keys."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "trustspace-approvers",
            "namespace": ns,
            "labels": {"trustspace.io/approvers": "true"},
        },
        "data": {"approvers.yaml": yaml.safe_dump({"dpo": pems})},
    }


def test_peers_tls_and_approvers_reach_the_rendered_gateway(
    cluster: LocalCluster, kube: Kube, namespace: str, operator: OperatorRunner, tmp_path: Path
) -> None:
    ns = namespace
    approver = SM2PrivateKey.generate().public_key().to_pem().decode()
    apply(cluster, _approvers(ns, [approver]))
    operator.start()
    apply(cluster, node_manifest("cn-nanning", ns, role="hub", jurisdiction="CN"))
    apply(cluster, node_manifest("vn-hanoi", ns, endpoint="https://10.1.2.3:30442"))
    # Provisioned before any link: no peers yet.
    for node in ("vn-hanoi", "cn-nanning"):
        wait_for(f"{node} rendered", lambda n=node: _template_hash(kube, ns, n))  # type: ignore[misc]
        assert _peers(kube, ns, node) == {}
    before = _template_hash(kube, ns, "vn-hanoi")

    apply(cluster, _link(ns, "vn-hanoi", "cn-nanning"))
    peers = wait_for("peer from the new link", lambda: _peers(kube, ns, "vn-hanoi") or None)
    assert peers == {"cn-nanning": "https://cn-nanning.example:8443"}
    # The changed config rolls the agents (a new pod-template digest), and links are one-way.
    wait_for("a new pod-template digest", lambda: _template_hash(kube, ns, "vn-hanoi") != before)
    assert _peers(kube, ns, "cn-nanning") == {}

    # The destination moves: the source's peer follows.
    apply(
        cluster,
        node_manifest(
            "cn-nanning", ns, role="hub", jurisdiction="CN", endpoint="https://10.1.2.9:30441"
        ),
    )
    wait_for(
        "peer at the new endpoint",
        lambda: _peers(kube, ns, "vn-hanoi") == {"cn-nanning": "https://10.1.2.9:30441"},
    )

    # The node's TLS pair is served under its endpoint's address and chains to the CA the
    # trust ConfigMap carries; the approvers' keys are there too.
    def tls_and_trust() -> tuple[dict[str, Any], dict[str, Any]] | None:
        secret = kube.get(k.SECRET, "vn-hanoi-gateway-tls", ns)
        cm = kube.get(k.CONFIG_MAP, "trustspace-trust-bundle", ns)
        if secret is None or cm is None or "gateway-ca.crt" not in cm["data"]:
            return None
        return secret, cm

    secret, cm = wait_for("gateway TLS pair and CA", tls_and_trust)
    cert_pem = base64.b64decode(secret["data"]["tls.crt"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.1.2.3"]
    (tmp_path / "ca.crt").write_text(cm["data"]["gateway-ca.crt"])
    (tmp_path / "tls.crt").write_bytes(cert_pem)
    (tmp_path / "tls.key").write_bytes(base64.b64decode(secret["data"]["tls.key"]))
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
        tmp_path / "tls.crt", tmp_path / "tls.key"
    )
    store = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    issuer = {k: v for rdn in store.get_ca_certs()[0]["subject"] for k, v in rdn}
    assert cert.issuer.rfc4514_string() == f"CN={issuer['commonName']}"
    assert yaml.safe_load(cm["data"]["approvers.yaml"]) == {"dpo": [approver]}

    # Approvers change: the ConfigMap follows at once (its own watch, not the resync).
    second = SM2PrivateKey.generate().public_key().to_pem().decode()
    apply(cluster, _approvers(ns, [approver, second]))

    def shipped() -> Any:
        cm = kube.get(k.CONFIG_MAP, "trustspace-trust-bundle", ns) or {}
        return yaml.safe_load((cm.get("data") or {}).get("approvers.yaml") or "{}")

    wait_for("approvers shipped", lambda: shipped() == {"dpo": [approver, second]}, timeout=30)

    # Private keys never leave Secrets: not in status, events or logs.
    for node in ("vn-hanoi", "cn-nanning"):
        body = kube.get(k.DATASPACENODE, node, ns)
        assert "PRIVATE KEY" not in str(body)
        for event in events_for(cluster, ns, node):
            assert "PRIVATE KEY" not in event["message"]
    assert "PRIVATE KEY" not in operator.logs()
