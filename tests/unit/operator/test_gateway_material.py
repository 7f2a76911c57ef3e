"""Gateway peers from MirrorLinks, and the TLS pairs the operator issues for gateways."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path
from typing import Any

from cryptography import x509

from trustspace.api.dataspacenode import DataSpaceNode
from trustspace_operator import render
from trustspace_operator.peers import GatewayView, build_space
from trustspace_operator.tls import ca as tls_ca
from trustspace_operator.tls import gateway as gateway_tls
from trustspace_operator.tls.ca import GatewayCA

NOW = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)


def _dsn(name: str, endpoint: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "space"},
        "spec": {"role": "edge", "jurisdiction": "VN", "endpoint": endpoint, **spec},
    }


def _link(src: str, dst: str, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": f"{src}-to-{dst}", "namespace": "space"}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-23T00:00:00Z"
    return {"metadata": meta, "spec": {"source": {"name": src}, "destination": {"name": dst}}}


def test_peers_are_the_destinations_of_a_nodes_links() -> None:
    nodes = [
        _dsn("vn", "https://vn.example:8443"),
        _dsn("cn", "https://cn.example:8443"),
        _dsn("th", "https://th.example:8443"),
        _dsn("off", "https://off:8443", capabilities={"gateway": {"enabled": False}}),
    ]
    links = [_link("vn", "cn"), _link("vn", "off"), _link("th", "cn", deleting=True)]
    policy = {
        "metadata": {"name": "p"},
        "spec": {"rules": [{"protections": [{"keySecretRef": {"name": "k1", "key": "x"}}]}]},
    }
    space = build_space(nodes, links, [policy])
    assert space.view("vn") == GatewayView({"cn": "https://cn.example:8443"}, ("k1",))
    assert space.view("th").peers == {}  # its link is being deleted
    assert space.view("cn").peers == {}  # links are one-way


def test_node_pair_is_served_under_every_name_peers_dial() -> None:
    node = DataSpaceNode.from_body(_dsn("vn-hanoi", "https://10.0.0.7:31443"))
    ca = GatewayCA.generate("space")
    secret = gateway_tls.node_secret(node, ca, NOW)
    assert secret["metadata"]["namespace"] == "space"
    cert = x509.load_pem_x509_certificate(tls_ca.secret_data(secret, "tls.crt"))
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.0.0.7"]
    assert "vn-hanoi-gateway.space.svc" in sans.get_values_for_type(x509.DNSName)
    assert gateway_tls.needs_issue(secret, node, ca, NOW) is None
    moved = DataSpaceNode.from_body(_dsn("vn-hanoi", "https://gw.vn.example:8443"))
    assert gateway_tls.needs_issue(secret, moved, ca, NOW) == "the endpoint changed"
    assert gateway_tls.needs_issue(secret, node, GatewayCA.generate("space"), NOW)
    later = NOW + tls_ca.NODE_VALIDITY - dt.timedelta(days=1)
    assert gateway_tls.needs_issue(secret, node, ca, later) == "the certificate expires soon"
    theirs = {**secret, "metadata": {**secret["metadata"], "labels": {}}}
    assert gateway_tls.needs_issue(theirs, moved, ca, NOW) is None


def _handshake(client: ssl.SSLContext, server: ssl.SSLContext, host: str) -> None:
    """A full TLS handshake in memory: the client checks the chain and the host name."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_hostname=host)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {c: False, s: False}
    for _ in range(10):
        for side in (c, s):
            if not done[side]:
                try:
                    side.do_handshake()
                    done[side] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return
    raise AssertionError("the handshake did not finish")


def test_ca_names_fit_any_namespace() -> None:
    assert GatewayCA.generate("n" * 63).cert.subject


def test_pair_loads_into_a_tls_server_that_trusts_the_ca(tmp_path: Path) -> None:
    node = DataSpaceNode.from_body(_dsn("vn-hanoi", "https://127.0.0.1:8443"))
    ca = GatewayCA.generate("space")
    secret = gateway_tls.node_secret(node, ca, dt.datetime.now(dt.UTC))
    (tmp_path / "tls.crt").write_bytes(tls_ca.secret_data(secret, "tls.crt"))
    (tmp_path / "tls.key").write_bytes(tls_ca.secret_data(secret, "tls.key"))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    client = ssl.create_default_context(cadata=ca.cert_pem.decode())
    _handshake(client, server, "127.0.0.1")  # the endpoint's host, as a peer dials it
    _handshake(client, server, "vn-hanoi-gateway.space.svc")
    # The CA's private key is only in the CA Secret, never in a node's.
    assert "tls.key" in tls_ca.ca_secret("space", ca)["data"]
    assert tls_ca.secret_data(secret, "tls.key") != tls_ca.ca_secret("space", ca)["data"]["tls.key"]
    assert render.Names("vn-hanoi").gateway_tls == secret["metadata"]["name"]
