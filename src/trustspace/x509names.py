"""Subject alternative names for the serving certificates we issue (API servers, gateways,
the collector): an address becomes an IP entry, anything else a DNS name, as TLS clients
match them."""

from __future__ import annotations

import ipaddress

from cryptography import x509


def subject_alt_names(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names
