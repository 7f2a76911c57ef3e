"""TLS material of the gateways: one serving pair per node, issued by the data space's CA.

Peers deliver to a node's gateway over HTTPS (``/v1/inbound``) and check its certificate
against the data space's gateway CA (ca.py), which the trust-bundle ConfigMap carries to
every node. Each node's private key is generated here and written only to the Secret in the
node's own cluster (never to status, events or logs).

A node Secret without our ``managed-by`` label is the user's (cert-manager, say) and is left
alone.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from trustspace.api.dataspacenode import DataSpaceNode
from trustspace.kube import Conflict, Kube, Obj
from trustspace.kube import kinds as k
from trustspace_operator import render
from trustspace_operator.tls.ca import (
    CA_ANNOTATION,
    SANS_ANNOTATION,
    GatewayCA,
    SpaceCAs,
    b64,
    fingerprint,
    reissue_reason,
)


def node_sans(node: DataSpaceNode) -> list[str]:
    """Names a peer may dial: the endpoint's host, and the gateway Service in-cluster."""
    host = urlsplit(str(node.spec.endpoint)).hostname or ""
    svc = render.Names(node.name).gateway
    ns = render.target_namespace(node)
    names = [host, svc, f"{svc}.{ns}", f"{svc}.{ns}.svc", f"{svc}.{ns}.svc.cluster.local"]
    return list(dict.fromkeys(n for n in names if n))


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
        "data": {"tls.crt": b64(cert), "tls.key": b64(key)},
    }


def needs_issue(secret: Obj, node: DataSpaceNode, ca: GatewayCA, now: dt.datetime) -> str | None:
    """Why a node's pair must be (re-)issued, or None when it is fine or not ours."""
    return reissue_reason(secret, node_sans(node), ca, now, moved="the endpoint changed")


class GatewayTls(SpaceCAs):
    """Keeps every gateway node's serving pair issued by its data space's CA."""

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
