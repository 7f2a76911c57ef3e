"""Names the rendered objects share with the agent and the space controller: labels, the
trust-bundle ConfigMap and its keys, the Pod's ports and the paths its volumes mount at."""

from __future__ import annotations

from trustspace.api.constants import GROUP

MANAGED_BY = "trustspace-operator"
NODE_LABEL = f"{GROUP}/node"
NODE_NAMESPACE_LABEL = f"{GROUP}/node-namespace"
TRUST_BUNDLE_CONFIGMAP = "trustspace-trust-bundle"
TRUST_BUNDLE_KEY = "bundle.json"
#: Key in the same ConfigMap holding the signed policy bundle envelope (space/policy_compiler.py).
POLICY_BUNDLE_KEY = "policy-bundle.json"
#: Key in the trust-bundle ConfigMap holding the CA of the hub collector's TLS certificate.
COLLECTOR_CA_KEY = "collector-ca.crt"
#: Keys in the same ConfigMap: the CA of the gateways' serving certificates (tls/gateway.py)
#: and the approvers' SM2 public keys (``{name: [PEM, ...]}``) that count for reviews.
GATEWAY_CA_KEY = "gateway-ca.crt"
APPROVERS_KEY = "approvers.yaml"
#: The agent's local API (transfers, reviews, /healthz, /metrics): for the node's own apps.
API_PORT = 8780
#: The gateway's HTTPS inbound port, where peers deliver; the gateway Service points here.
GATEWAY_PORT = 8443
CONFIG_DIR = "/etc/trustspace"
KEY_DIR = "/var/run/trustspace/key"
BUNDLE_DIR = "/var/run/trustspace/trust"
TLS_DIR = "/var/run/trustspace/gateway-tls"
SECRETS_DIR = "/var/run/trustspace/secrets"
CALLERS_DIR = "/var/run/trustspace/callers"
#: Key of the callers Secret: ``{caller: [SM3 hex of its token]}``, the agent's
#: ``callerTokensFile``; and of each caller's own Secret: the bearer token itself.
CALLERS_KEY = "callers.yaml"
TOKEN_KEY = "token"  # noqa: S105 - a key's name
#: Label of a caller's token Secret: which caller it is (stale ones are found by it).
CALLER_LABEL = f"{GROUP}/caller"
DATA_DIR = "/var/lib/trustspace"
#: Pod-template annotation with the config's digest: a changed config rolls the agents.
CONFIG_HASH_ANNOTATION = f"{GROUP}/config-hash"
