"""Several independent clusters at once: a hub and two edges, each with its own data."""

from __future__ import annotations

import json

from trustspace.localk8s import LocalCluster


def _names(cluster: LocalCluster) -> set[str]:
    out = cluster.kubectl("get", "configmaps", "-n", "default", "-o", "json").stdout
    return {item["metadata"]["name"] for item in json.loads(out)["items"]}


def test_hub_and_edges_are_independent_and_survive_an_edge_outage(
    fleet: dict[str, LocalCluster],
) -> None:
    servers = {c.server for c in fleet.values()}
    assert len(servers) == 3
    for name, member in fleet.items():
        member.kubectl("create", "configmap", f"only-on-{name}", "-n", "default")
    for name, member in fleet.items():
        mine = {n for n in _names(member) if n.startswith("only-on-")}
        assert mine == {f"only-on-{name}"}

    edge = fleet["edge-1"]
    edge.stop()
    try:
        assert not edge.probe()
        assert edge.kubectl("get", "ns", check=False, timeout=20).returncode != 0
        for name in ("hub", "edge-2"):
            assert fleet[name].probe()
            assert f"only-on-{name}" in _names(fleet[name])
    finally:
        edge.start()
    # Same address, same certificates, same data after the restart.
    assert edge.probe()
    assert "only-on-edge-1" in _names(edge)
