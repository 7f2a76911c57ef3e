"""With --collector-tls-secret the operator issues the collector's serving pair into the data
space's namespace from the data space's CA, and ships that CA as the collector CA. A collector
started from exactly what the chart mounts (that pair, the hub's key Secret, the trust
ConfigMap) serves HTTPS that an agent verifies with the CA it gets, and authenticates the hub
node's signed requests."""

from __future__ import annotations

import base64
import json
import os
import signal
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import yaml
from cryptography import x509

from support.audit_harness import free_port
from support.audit_harness import wait_for as wait_until
from support.operator import OperatorRunner, apply, node_manifest, wait_for
from trustspace.audit.auth import sign_request
from trustspace.crypto import SM2PrivateKey
from trustspace.kube import Kube, Obj
from trustspace.kube import kinds as k
from trustspace.localk8s import LocalCluster

SECRET = "trustspace-collector-tls"
PORT = free_port()
URL = f"https://127.0.0.1:{PORT}"  # an address outside the cluster, like kind's NodePort
TRUSTSPACE = str(Path(sys.executable).parent / "trustspace")


def _cert(data: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(base64.b64decode(data))


def test_collector_pair_is_issued_and_its_ca_reaches_the_trust_configmap(
    cluster: LocalCluster, kube: Kube, namespace: str, operator: OperatorRunner, tmp_path: Path
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
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert f"trustspace-collector.{ns}.svc" in sans.get_values_for_type(x509.DNSName)
    # Public halves only in the ConfigMap; the CA's key stays in its own Secret.
    assert "PRIVATE KEY" not in "".join(trust["data"].values())

    # The agents are told the same URL.
    agent = wait_for(
        "the hub agent's config", lambda: kube.get(k.CONFIG_MAP, "cn-nanning-agent-config", ns)
    )
    assert f"collectorUrl: {URL}" in agent["data"]["agent.yaml"]

    _serve_and_verify(kube, ns, secret, trust, tmp_path)

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


def _serve_and_verify(kube: Kube, ns: str, secret: Obj, trust: Obj, root: Path) -> None:
    """Files as the chart's collector Pod mounts them; a collector on them; an agent's view."""
    hub_key = kube.get(k.SECRET, "cn-nanning-sm2-key", ns)
    assert hub_key is not None
    files = {
        "tls.crt": base64.b64decode(secret["data"]["tls.crt"]),
        "tls.key": base64.b64decode(secret["data"]["tls.key"]),
        "key.pem": base64.b64decode(hub_key["data"]["key.pem"]),
        "bundle.json": trust["data"]["bundle.json"].encode(),
        "collector-ca.crt": trust["data"]["collector-ca.crt"].encode(),
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    config = {
        "listenHost": "127.0.0.1",
        "listenPort": PORT,
        "tlsCertFile": str(root / "tls.crt"),
        "tlsKeyFile": str(root / "tls.key"),
        "database": str(root / "audit.db"),
        "trustBundleFile": str(root / "bundle.json"),
        "hubKeyFile": str(root / "key.pem"),
    }
    (root / "collector.yaml").write_text(yaml.safe_dump(config))
    log = (root / "collector.log").open("ab")
    proc = subprocess.Popen(
        [TRUSTSPACE, "collector", "run", "--config", str(root / "collector.yaml")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "TRUSTSPACE_LOG_FORMAT": "human"},
        start_new_session=True,
    )
    log.close()
    # What an agent does: verify the server against collector-ca.crt, hostname included.
    agent_tls = ssl.create_default_context(cafile=str(root / "collector-ca.crt"))
    try:

        def healthy() -> bool:
            assert proc.poll() is None, (root / "collector.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(URL + "/healthz", context=agent_tls, timeout=2):  # noqa: S310
                    return True
            except OSError:
                return False

        wait_until(healthy, 30, "the collector's /healthz over verified TLS")
        body = json.dumps({"lastSeq": 0}).encode()
        key = SM2PrivateKey.from_pem(files["key.pem"])
        request = urllib.request.Request(  # noqa: S310 - a loopback test URL
            URL + "/v1/heartbeat",
            data=body,
            headers={
                **sign_request("POST", "/v1/heartbeat", body, "cn-nanning", key),
                "Content-Type": "application/json",
            },
            method="POST",
        )
        with urllib.request.urlopen(request, context=agent_tls, timeout=10) as resp:  # noqa: S310
            assert resp.status == 200
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
