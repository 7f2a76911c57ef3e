"""The hub collector's TLS serving pair, issued by the data space's CA (see ca.py).

With ``--collector-tls-secret NAME`` the operator keeps the Secret NAME in every data space's
namespace on the hub: a serving pair for the collector URL's host and the in-cluster names of
the ``trustspace-collector`` Service there, issued by the same CA as the gateways (Secret
``trustspace-gateway-ca``, created on first use). It is re-issued when those names or the CA
change, or 30 days before expiry. Unless ``--collector-ca-file`` names another CA, that CA is
also the trust ConfigMap's ``collector-ca.crt``, so agents check the collector against it. The
chart's collector Deployment mounts the Secret: the private key exists only there. A Secret
without the operator's ``managed-by`` label is the user's own pair and left alone.
"""

from __future__ import annotations

import base64
import datetime as dt
from urllib.parse import urlsplit

from trustspace.kube import Conflict, Kube, Obj
from trustspace.kube import kinds as k
from trustspace_operator import render
from trustspace_operator.tls.ca import (
    CA_ANNOTATION,
    SANS_ANNOTATION,
    GatewayCA,
    SpaceCAs,
    fingerprint,
    reissue_reason,
)

#: The collector Service's name in a data space's namespace (the chart's collector.yaml).
SERVICE = "trustspace-collector"


def collector_sans(url: str, namespace: str) -> list[str]:
    """Names agents may dial: the URL's host (a NodePort address, say) and the Service."""
    host = urlsplit(url).hostname or ""
    svc = f"{SERVICE}.{namespace}"
    names = [host, SERVICE, svc, f"{svc}.svc", f"{svc}.svc.cluster.local"]
    return list(dict.fromkeys(n for n in names if n))


def collector_secret(
    name: str, namespace: str, hosts: list[str], ca: GatewayCA, now: dt.datetime
) -> Obj:
    cert, key = ca.issue(hosts, now)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/part-of": "trustspace",
                "app.kubernetes.io/managed-by": render.MANAGED_BY,
                "app.kubernetes.io/component": "collector-tls",
            },
            "annotations": {
                SANS_ANNOTATION: ",".join(hosts),
                CA_ANNOTATION: fingerprint(ca.cert_pem),
            },
        },
        "data": {
            "tls.crt": base64.b64encode(cert).decode(),
            "tls.key": base64.b64encode(key).decode(),
        },
    }


def ensure(
    hub: Kube, cas: SpaceCAs, name: str, namespace: str, url: str, now: dt.datetime
) -> tuple[GatewayCA, str | None]:
    """Issue or renew the collector's pair in `namespace`: (the CA, why it was issued or None)."""
    ca = cas.ca(namespace)
    hosts = collector_sans(url, namespace)
    live = hub.get(k.SECRET, name, namespace)
    if live is None:
        try:
            hub.create(collector_secret(name, namespace, hosts, ca, now))
            return ca, "issued"
        except Conflict:  # another replica issued it meanwhile
            live = hub.get(k.SECRET, name, namespace)
            if live is None:
                raise
    why = reissue_reason(live, hosts, ca, now, moved="the collector URL changed")
    if why is not None:
        hub.apply(collector_secret(name, namespace, hosts, ca, now))
    return ca, why
