"""Fixtures shared by integration tests: the trustspace.io CRDs installed in `cluster`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trustspace.localk8s import LocalCluster

CRDS_DIR = Path(__file__).resolve().parents[2] / "crds"


@pytest.fixture(scope="session")
def crds(cluster: LocalCluster) -> list[str]:
    """Apply `crds/*.yaml` to the session's cluster and wait until each is Established.

    Returns the CRD names (e.g. `dataspacenodes.trustspace.io`). Server-side apply, so a
    re-run against a long-lived cluster updates the CRDs in place.
    """
    files = sorted(CRDS_DIR.glob("*.yaml"))
    assert files, f"no CRDs in {CRDS_DIR}: run python -m trustspace.api.crdgen"
    names = [yaml.safe_load(f.read_text(encoding="utf-8"))["metadata"]["name"] for f in files]
    cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=trustspace-tests",
        *(arg for f in files for arg in ("-f", str(f))),
    )
    cluster.kubectl(
        "wait", "--for", "condition=established", "--timeout=60s", *(f"crd/{n}" for n in names)
    )
    return names
