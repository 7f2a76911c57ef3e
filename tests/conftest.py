"""Shared fixtures: real local control planes (etcd + kube-apiserver), reused per session.

Markers follow the folders: tests/unit -> unit, tests/integration -> integration,
tests/e2e -> e2e. Integration tests fail (never skip) when the binaries are missing: run
hack/k8s-bin.sh, or `make test`, which does it for you.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from trustspace.localk8s import BinariesNotFound, LocalCluster, LocalFleet, find_bin_dir

_TESTS = Path(__file__).parent
_MARKER_BY_DIR = {"unit": "unit", "integration": "integration", "e2e": "e2e", "kind": "kind"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            top = item.path.relative_to(_TESTS).parts[0]
        except (ValueError, IndexError):
            continue
        marker = _MARKER_BY_DIR.get(top)
        # Not `marker in item.keywords`: keywords hold the folder names too, so a test in
        # tests/e2e/ looked marked already and `-m e2e` selected nothing.
        if marker and item.get_closest_marker(marker) is None:
            item.add_marker(getattr(pytest.mark, marker))


@pytest.fixture(scope="session")
def k8s_bin() -> Path:
    """Directory with kube-apiserver, etcd, kubectl and helm (built once, then cached)."""
    try:
        return find_bin_dir()
    except BinariesNotFound as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def cluster(k8s_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """The session's hub control plane, with kube-controller-manager for GC and namespaces."""
    hub = LocalCluster(
        "hub", root=tmp_path_factory.mktemp("clusters"), bin_dir=k8s_bin, controller_manager=True
    )
    try:
        yield hub.start()
    finally:
        hub.destroy()


@pytest.fixture(scope="session")
def fleet(
    cluster: LocalCluster, k8s_bin: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, LocalCluster]]:
    """The hub plus two edge control planes, each its own etcd and API server."""
    edges = LocalFleet(
        ["edge-1", "edge-2"],
        root=tmp_path_factory.mktemp("edges"),
        bin_dir=k8s_bin,
        controller_manager=True,
    )
    edges.start()
    try:
        yield {"hub": cluster, "edge-1": edges["edge-1"], "edge-2": edges["edge-2"]}
    finally:
        edges.destroy()


def _namespace_name(request: pytest.FixtureRequest) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    return f"t-{base}-{secrets.token_hex(3)}"


@pytest.fixture
def namespace(cluster: LocalCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace in the hub cluster, deleted after the test (without waiting)."""
    name = _namespace_name(request)
    cluster.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
