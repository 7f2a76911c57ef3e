"""With --collector-tls-secret the operator issues the collector's serving pair into the data
space's namespace from the data space's CA, and ships that CA as the collector CA."""

from __future__ import annotations

import base64

from cryptography import x509

from support.operator import OperatorRunner, apply, node_manifest, wait_for
from trustspace.kube import Kube, Obj
from trustspace.kube import kinds as k
from trustspace.localk8s import LocalCluster

SECRET = "trustspace-collector-tls"
URL = "https://172.18.0.2:30440"


def _cert(data: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(base64.b64decode(data))


def test_collector_pair_is_issued_and_its_ca_reaches_the_trust_configmap(
    cluster: LocalCluster, kube: Kube, namespace: str, operator: OperatorRunner
) -> None:
    ns = namespace
    operator.start(args=("--collector-url", URL, "--collector-tls-secret", SECRET))
    apply(cluster, node_manifest("cn-nanning", ns, role="hub", jurisdiction="CN"))

    secret: Obj = wait_for("the collector's TLS Secret", lambda: kube.get(k.SECRET, SECRET, ns))
    trust: Obj = wait_for(
        "collector-ca.crt in the trust ConfigMap",
        lambda: (
            cm
            if (cm := kube.get(k.CONFIG_MAP, "trustspace-trust-bundle", ns))
            and "collector-ca.crt" in (cm.get("data") or {})
            else None
        ),
    )
    assert secret["type"] == "kubernetes.io/tls"
    cert = _cert(secret["data"]["tls.crt"])
    ca = x509.load_pem_x509_certificate(trust["data"]["collector-ca.crt"].encode())
    cert.verify_directly_issued_by(ca)  # agents check the collector against exactly this CA
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["172.18.0.2"]
    assert f"trustspace-collector.{ns}.svc" in sans.get_values_for_type(x509.DNSName)
    # Public halves only in the ConfigMap; the CA's key stays in its own Secret.
    assert "PRIVATE KEY" not in "".join(trust["data"].values())

    # The agents are told the same URL.
    agent = wait_for(
        "the hub agent's config", lambda: kube.get(k.CONFIG_MAP, "cn-nanning-agent-config", ns)
    )
    assert f"collectorUrl: {URL}" in agent["data"]["agent.yaml"]

    # A user's own pair (no managed-by label) is left alone across passes.
    kube.patch(
        k.SECRET, SECRET, {"metadata": {"labels": {"app.kubernetes.io/managed-by": None}}}, ns
    )
    mine = kube.get(k.SECRET, SECRET, ns)
    assert mine is not None
    apply(cluster, node_manifest("vn-hanoi", ns))  # another publication pass
    wait_for(
        "vn-hanoi in the trust bundle",
        lambda: (
            "vn-hanoi"
            in (
                (kube.get(k.CONFIG_MAP, "trustspace-trust-bundle", ns) or {}).get("data") or {}
            ).get("bundle.json", "")
        ),
    )
    after = kube.get(k.SECRET, SECRET, ns)
    assert after is not None and after["data"] == mine["data"]
