from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.gateway_harness import NODES, GatewayHarness


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHarness]:
    """The collector, the hub gateway (cn-nanning) and the four edge gateways."""
    h = GatewayHarness(tmp_path_factory.mktemp("space"))
    try:
        h.start_collector()
        for node in NODES:
            h.start_gateway(node)
        yield h
    finally:
        h.close()


#: A source and a destination gateway, without collector: enough for one link's traffic.
PAIR = {"cn-nanning": "CN", "vn-hanoi": "VN"}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHarness]:
    """vn-hanoi -> cn-nanning, shared by a module's tests."""
    h = GatewayHarness(tmp_path_factory.mktemp("pair"), PAIR)
    try:
        for node in PAIR:
            h.start_gateway(node)
        yield h
    finally:
        h.close()
