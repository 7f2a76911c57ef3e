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
