"""What the gateways need beside the bundles, in the same ConfigMap: the CAs of the serving
certificates (gateways', collector's) and the approvers' SM2 public keys."""

from __future__ import annotations

from trustspace.kube import Kube
from trustspace.kube import kinds as k
from trustspace_operator import render
from trustspace_operator.tls import ca as tls_ca

#: ConfigMap in a data space's namespace (hub cluster) with the approvers' SM2 public keys,
#: ``approvers.yaml: {name: [PEM, ...]}``; copied into every node's trust ConfigMap.
APPROVERS_CONFIGMAP = "trustspace-approvers"
APPROVERS_LABEL = "trustspace.io/approvers"


def gateway_extras(hub: Kube, space: str, collector_ca: str | None) -> dict[str, str]:
    """The extras of `space`; `collector_ca`: the CA of the collector pair issued there, if
    it is not one the operator was given (then it goes in as is, see SpaceController).
    The approvers' key is always present, so the file always exists."""
    extras = {render.APPROVERS_KEY: "{}\n"}
    if collector_ca:
        extras[render.COLLECTOR_CA_KEY] = collector_ca
    ca = tls_ca.read_ca_cert(hub, space)
    if ca:
        extras[render.GATEWAY_CA_KEY] = ca
    approvers = hub.get(k.CONFIG_MAP, APPROVERS_CONFIGMAP, space)
    text = ((approvers or {}).get("data") or {}).get(render.APPROVERS_KEY)
    if text:
        extras[render.APPROVERS_KEY] = str(text)
    return extras
