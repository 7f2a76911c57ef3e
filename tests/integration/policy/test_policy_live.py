"""`trustspace policy explain|compile` reading live objects from a real kube-apiserver."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from trustspace.cli import main
from trustspace.cli.policy import read_live, read_manifests
from trustspace.localk8s import LocalCluster
from trustspace.policy.compiler import compile_bundle

pytestmark = pytest.mark.integration

SAMPLES = Path(__file__).resolve().parents[3] / "config" / "samples"


def test_explain_reads_the_namespace_objects(
    cluster: LocalCluster, crds: list[str], namespace: str
) -> None:
    files = sorted(SAMPLES.glob("*.yaml"))
    cluster.kubectl("apply", "-n", namespace, *(a for f in files for a in ("-f", str(f))))
    runner = CliRunner()
    live = ["--kubeconfig", str(cluster.kubeconfig), "-n", namespace]
    result = runner.invoke(
        main,
        [
            "policy",
            "explain",
            "--from",
            "vn-hanoi",
            "--to",
            "cn-nanning",
            "--class",
            "important",
            "--category",
            "trade",
            *live,
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Decision: REVIEW (channel review)")
    assert "profile VN/core-important-approval" in result.output

    # The live objects (with the API server's defaults) compile to the same policies and
    # nodes as the files they were applied from; only the namespace differs.
    live_bundle = compile_bundle(*read_live(str(cluster.kubeconfig), namespace), version=1)
    file_bundle = compile_bundle(*read_manifests([str(SAMPLES)]), version=1)
    assert live_bundle.bundle.namespace == namespace
    assert live_bundle.bundle.policies == file_bundle.bundle.policies
    assert live_bundle.bundle.nodes == file_bundle.bundle.nodes
    assert all(r.compiled for r in live_bundle.reports.values())
