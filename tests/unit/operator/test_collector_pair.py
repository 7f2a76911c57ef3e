"""The collector's TLS serving pair the operator issues from the data space's CA."""

from __future__ import annotations

import base64
import datetime as dt

from cryptography import x509

from trustspace_operator.tls import ca as tls_ca
from trustspace_operator.tls import collector as collector_tls
from trustspace_operator.tls.ca import GatewayCA

NOW = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)


def _cert(secret: dict[str, object]) -> x509.Certificate:
    data = secret["data"]
    assert isinstance(data, dict)
    return x509.load_pem_x509_certificate(base64.b64decode(data["tls.crt"]))


def test_collector_is_served_under_the_url_host_and_its_service_names() -> None:
    hosts = collector_tls.collector_sans("https://172.18.0.2:30440", "space")
    assert hosts == [
        "172.18.0.2",
        "trustspace-collector",
        "trustspace-collector.space",
        "trustspace-collector.space.svc",
        "trustspace-collector.space.svc.cluster.local",
    ]
    # The in-cluster URL names the Service itself: no duplicate SAN.
    in_cluster = collector_tls.collector_sans(
        "https://trustspace-collector.space.svc:8443", "space"
    )
    assert len(in_cluster) == len(set(in_cluster)) == 4


def test_pair_chains_to_the_ca_and_is_reissued_when_names_ca_or_expiry_say_so() -> None:
    ca = GatewayCA.generate("space")
    hosts = collector_tls.collector_sans("https://172.18.0.2:30440", "space")
    secret = collector_tls.collector_secret("collector-tls", "space", hosts, ca, NOW)
    assert secret["type"] == "kubernetes.io/tls"
    cert = _cert(secret)
    cert.verify_directly_issued_by(ca.cert)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["172.18.0.2"]
    assert "trustspace-collector.space.svc" in sans.get_values_for_type(x509.DNSName)

    def why(s: dict[str, object], names: list[str], c: GatewayCA, now: dt.datetime) -> str | None:
        return tls_ca.reissue_reason(s, names, c, now, moved="moved")

    assert why(secret, hosts, ca, NOW) is None
    other = collector_tls.collector_sans("https://collector.example:443", "space")
    assert why(secret, other, ca, NOW) == "moved"
    assert why(secret, hosts, GatewayCA.generate("space"), NOW) == "the gateway CA changed"
    later = NOW + tls_ca.NODE_VALIDITY - dt.timedelta(days=1)
    assert why(secret, hosts, ca, later) == "the certificate expires soon"
    theirs = {**secret, "metadata": {**secret["metadata"], "labels": {}}}
    assert why(theirs, other, ca, NOW) is None
