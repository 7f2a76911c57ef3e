"""TLS material of the gateways: a data-space CA on the hub, one serving pair per node.

Peers deliver to a node's gateway over HTTPS (``/v1/inbound``) and check its certificate
against the data space's gateway CA, which the trust-bundle ConfigMap carries to every
node. The CA's private key stays in a Secret beside the DataSpaceNodes in the hub cluster;
each node's private key is generated here and written only to the Secret in the node's own
cluster (never to status, events or logs). Python's ``ssl`` has no SM2 cipher suites, so the
transport is ECDSA P-256; what crosses it is SM2-signed and SM4-encrypted end to end.

A node Secret without our ``managed-by`` label is the user's (cert-manager, say) and is left
alone; so is a CA Secret the user created before the operator needed one.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trustspace.api.dataspacenode import DataSpaceNode
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


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _data(secret: Obj, key: str) -> bytes:
    return base64.b64decode((secret.get("data") or {}).get(key, ""))


def fingerprint(cert_pem: bytes) -> str:
    """Short digest of the CA certificate, stamped on the node pairs it issued."""
    return hashlib.sha256(cert_pem).hexdigest()[:32]


def node_sans(node: DataSpaceNode) -> list[str]:
    """Names a peer may dial: the endpoint's host, and the gateway Service in-cluster."""
    host = urlsplit(str(node.spec.endpoint)).hostname or ""
    svc = render.Names(node.name).gateway
    ns = render.target_namespace(node)
    names = [host, svc, f"{svc}.{ns}", f"{svc}.{ns}.svc", f"{svc}.{ns}.svc.cluster.local"]
    return list(dict.fromkeys(n for n in names if n))


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
        now = dt.datetime.now(dt.UTC)
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
        key = serialization.load_pem_private_key(_data(secret, "tls.key"), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{CA_SECRET} must hold an EC private key")
        return cls(_data(secret, "tls.crt"), key)

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
        "data": {"tls.crt": _b64(ca.cert_pem), "tls.key": _b64(_pem_key(ca.key))},
    }


def read_ca_cert(hub: Kube, namespace: str) -> str | None:
    """The CA certificate (public) of a data space, for the trust-bundle ConfigMap."""
    secret = hub.get(k.SECRET, CA_SECRET, namespace)
    if secret is None:
        return None
    return _data(secret, "tls.crt").decode() or None


def node_secret(node: DataSpaceNode, ca: GatewayCA, now: dt.datetime) -> Obj:
    hosts = node_sans(node)
    cert, key = ca.issue(hosts, now)
    meta: Obj = {
        "name": render.Names(node.name).gateway_tls,
        "namespace": render.target_namespace(node),
        "labels": render.labels(node),
        "annotations": {SANS_ANNOTATION: ",".join(hosts), CA_ANNOTATION: fingerprint(ca.cert_pem)},
    }
    owners = render.owner_reference(node)
    if owners:
        meta["ownerReferences"] = owners
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": meta,
        "data": {"tls.crt": _b64(cert), "tls.key": _b64(key)},
    }


def needs_issue(secret: Obj, node: DataSpaceNode, ca: GatewayCA, now: dt.datetime) -> str | None:
    """Why a node's pair must be (re-)issued, or None when it is fine or not ours."""
    return reissue_reason(secret, node_sans(node), ca, now, moved="the endpoint changed")


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
        cert = x509.load_pem_x509_certificate(_data(secret, "tls.crt"))
    except ValueError:
        return "the certificate is unreadable"
    if cert.not_valid_after_utc - now < RENEW_BEFORE:
        return "the certificate expires soon"
    return None


class GatewayTls:
    """Keeps every gateway node's serving pair issued by its data space's CA."""

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

    def ensure(
        self, kube: Kube, node: DataSpaceNode, now: dt.datetime, *, likely_missing: bool = False
    ) -> str | None:
        """Issue or renew the node's pair when needed; returns why it did, or None."""
        ca = self.ca(node.namespace)
        name = render.Names(node.name).gateway_tls
        ns = render.target_namespace(node)
        live = None if likely_missing else kube.get(k.SECRET, name, ns)
        if live is None:
            try:
                kube.create(node_secret(node, ca, now))
                return "issued"
            except Conflict:
                live = kube.get(k.SECRET, name, ns)
                if live is None:
                    raise
        why = needs_issue(live, node, ca, now)
        if why is not None:
            kube.apply(node_secret(node, ca, now))
        return why
