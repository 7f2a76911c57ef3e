"""Serving certificates name addresses as IP entries and everything else as DNS names."""

from __future__ import annotations

import ipaddress

from cryptography import x509

from trustspace.x509names import subject_alt_names


def test_addresses_become_ip_entries_and_names_dns_entries() -> None:
    names = subject_alt_names(["127.0.0.1", "::1", "trustspace-collector.demo.svc", "localhost"])
    assert names == [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
        x509.DNSName("trustspace-collector.demo.svc"),
        x509.DNSName("localhost"),
    ]
