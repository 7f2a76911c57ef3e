"""The kind clusters hack/e2e-kind.sh starts: a hub and two edges with the chart installed.

These tests run only under the `kind` marker (``make e2e-kind``), with the variables
``hack/kind-up.sh`` prints. Every call goes through the real kubectl against real kubelets.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.dataspace import ENV_EDGES, ENV_HUB, ENV_NAMESPACE
from support.kind import Clusters


@pytest.fixture(scope="session")
def clusters(k8s_bin: Path) -> Iterator[Clusters]:
    names = {"hub": ENV_HUB, "edge-1": ENV_EDGES[0], "edge-2": ENV_EDGES[1]}
    missing = [v for v in [*names.values(), ENV_NAMESPACE] if not os.environ.get(v)]
    assert not missing, (
        f"{', '.join(missing)} unset: these tests drive the kind clusters hack/kind-up.sh "
        "starts; run them with `make e2e-kind`"
    )
    yield Clusters(
        k8s_bin / "kubectl",
        {name: os.environ[var] for name, var in names.items()},
        os.environ[ENV_NAMESPACE],
    )
