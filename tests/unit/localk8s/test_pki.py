from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from trustspace.localk8s.pki import CertificateAuthority


def test_client_identity_carries_user_and_groups() -> None:
    ca = CertificateAuthority("test")
    pair = ca.issue_client("alice", ("devs", "ops"))
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    orgs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert orgs == ["devs", "ops"]
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    cert.verify_directly_issued_by(ca_cert)


def test_server_certificate_names_ips_and_hosts() -> None:
    pair = CertificateAuthority("test").issue_server(["127.0.0.1", "localhost"])
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert b"PRIVATE KEY" in pair.key_pem
