"""Fixtures for operator tests: the real operator process against the local cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.operator import OperatorRunner
from trustspace.kube import Kube
from trustspace.kube import kinds as k
from trustspace.localk8s import LocalCluster


@pytest.fixture
def kube(cluster: LocalCluster) -> Kube:
    return Kube.from_kubeconfig(str(cluster.kubeconfig))


@pytest.fixture
def operator(
    cluster: LocalCluster,
    crds: list[str],
    namespace: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[OperatorRunner]:
    runner = OperatorRunner(cluster, [namespace], tmp_path)
    try:
        yield runner
    finally:
        runner.stop()
        # With no operator left to run them, finalizers would keep the namespace forever.
        for node in Kube.from_kubeconfig(str(cluster.kubeconfig)).list(k.DATASPACENODE, namespace):
            cluster.kubectl(
                "patch",
                "dsn",
                node["metadata"]["name"],
                "-n",
                namespace,
                "--type=merge",
                "-p",
                '{"metadata":{"finalizers":null}}',
                check=False,
            )
        if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
            print(runner.logs()[-8000:])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{rep.when}", rep)
