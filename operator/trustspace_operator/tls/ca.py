"""The data space's CA on the hub: its Secret, the pairs it issues, when to re-issue them.

The CA's private key stays in a Secret beside the DataSpaceNodes in the hub cluster; the
gateways' (gateway.py) and the collector's (collector.py) serving pairs are issued by it.
Python's ``ssl`` has no SM2 cipher suites, so the transport is ECDSA P-256; what crosses it
is SM2-signed and SM4-encrypted end to end. A CA Secret the user created before the operator
needed one is left alone.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import threading
import time
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trustspace import clock
from trustspace.kube import Conflict, Kube, Obj
from trustspace.kube import kinds as k
from trustspace.x509names import subject_alt_names
from trustspace_operator import render

CA_SECRET = "trustspace-gateway-ca"  # noqa: S105 - a Secret's name
SANS_ANNOTATION = "trustspace.io/gateway-sans"
CA_ANNOTATION = "trustspace.io/gateway-ca"
CA_VALIDITY = dt.timedelta(days=3650)
NODE_VALIDITY = dt.timedelta(days=365)
#: Re-issue a node's pair when less than this is left, long before peers would refuse it.
RENEW_BEFORE = dt.timedelta(days=30)
#: How long a read CA is trusted before it is read again (a user may replace it).
CA_CACHE_SECONDS = 60.0


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def secret_data(secret: Obj, key: str) -> bytes:
    return base64.b64decode((secret.get("data") or {}).get(key, ""))


def fingerprint(cert_pem: bytes) -> str:
    """Short digest of the CA certificate, stamped on the node pairs it issued."""
    return hashlib.sha256(cert_pem).hexdigest()[:32]


@dataclass(frozen=True)
class GatewayCA:
    cert_pem: bytes
    key: ec.EllipticCurvePrivateKey

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @classmethod
    def generate(cls, space: str) -> GatewayCA:
        key = ec.generate_private_key(ec.SECP256R1())
        # A CN is at most 64 characters; namespaces may be 63 on their own.
        cn = f"trustspace gateways {space}"[:64]
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        now = clock.now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(cert.public_bytes(serialization.Encoding.PEM), key)

    @classmethod
    def from_secret(cls, secret: Obj) -> GatewayCA:
        key = serialization.load_pem_private_key(secret_data(secret, "tls.key"), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{CA_SECRET} must hold an EC private key")
        return cls(secret_data(secret, "tls.crt"), key)

    def issue(self, hosts: list[str], now: dt.datetime) -> tuple[bytes, bytes]:
        """A serving pair for `hosts`: (certificate PEM, private key PEM)."""
        key = ec.generate_private_key(ec.SECP256R1())
        sans = subject_alt_names(hosts)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0][:64])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + NODE_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def ca_secret(namespace: str, ca: GatewayCA) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {
            "name": CA_SECRET,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/part-of": "trustspace",
                "app.kubernetes.io/managed-by": render.MANAGED_BY,
                "app.kubernetes.io/component": "gateway-ca",
            },
        },
        "data": {"tls.crt": b64(ca.cert_pem), "tls.key": b64(_pem_key(ca.key))},
    }


def read_ca_cert(hub: Kube, namespace: str) -> str | None:
    """The CA certificate (public) of a data space, for the trust-bundle ConfigMap."""
    secret = hub.get(k.SECRET, CA_SECRET, namespace)
    if secret is None:
        return None
    return secret_data(secret, "tls.crt").decode() or None


def reissue_reason(
    secret: Obj, hosts: list[str], ca: GatewayCA, now: dt.datetime, *, moved: str
) -> str | None:
    """Why a pair issued for `hosts` must be (re-)issued (`moved` when the names differ), or
    None when it is fine or not ours."""
    meta = secret.get("metadata") or {}
    if (meta.get("labels") or {}).get("app.kubernetes.io/managed-by") != render.MANAGED_BY:
        return None  # the user's own pair
    ann = meta.get("annotations") or {}
    if ann.get(SANS_ANNOTATION) != ",".join(hosts):
        return moved
    if ann.get(CA_ANNOTATION) != fingerprint(ca.cert_pem):
        return "the gateway CA changed"
    try:
        cert = x509.load_pem_x509_certificate(secret_data(secret, "tls.crt"))
    except ValueError:
        return "the certificate is unreadable"
    if cert.not_valid_after_utc - now < RENEW_BEFORE:
        return "the certificate expires soon"
    return None


class SpaceCAs:
    """The CA of each data space, read (or created on first use) from the hub and cached."""

    def __init__(self, hub: Kube) -> None:
        self.hub = hub
        self._cas: dict[str, tuple[float, GatewayCA]] = {}
        self._lock = threading.Lock()

    def ca(self, namespace: str) -> GatewayCA:
        with self._lock:
            cached = self._cas.get(namespace)
            if cached is not None and time.monotonic() - cached[0] < CA_CACHE_SECONDS:
                return cached[1]
            secret = self.hub.get(k.SECRET, CA_SECRET, namespace)
            if secret is None:
                try:
                    secret = self.hub.create(ca_secret(namespace, GatewayCA.generate(namespace)))
                except Conflict:  # another operator replica made it meanwhile
                    secret = self.hub.get(k.SECRET, CA_SECRET, namespace)
                    if secret is None:
                        raise
            ca = GatewayCA.from_secret(secret)
            self._cas[namespace] = (time.monotonic(), ca)
            return ca
