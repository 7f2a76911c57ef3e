"""The GitHub Actions workflows pass actionlint (built from its pinned Go module, then cached).

hack/actionlint.sh builds actionlint on first use (about a minute; progress on stderr) and
runs shellcheck over `run:` blocks too when shellcheck is on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "hack" / "actionlint.sh"
WORKFLOW = ROOT / ".github" / "workflows" / "e2e-kind.yaml"


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    if shutil.which("go") is None and "cached:" not in _cached_hint():
        pytest.skip("actionlint is not cached and Go is not on PATH to build it (install Go)")
    result = subprocess.run(
        [str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=900, check=False
    )
    sys.stderr.write(result.stderr)  # build progress, shown with -s or on failure
    return result


def _cached_hint() -> str:
    version = re.search(r"^ACTIONLINT_VERSION=(\S+)$", SCRIPT.read_text(), re.M)
    assert version
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    base = Path(os.environ.get("TRUSTSPACE_CACHE") or Path(xdg) / "trustspace")
    cache = base / "bin" / f"actionlint-{version.group(1)}"
    return "cached:" if (cache / "actionlint").exists() else ""


def test_workflows_pass_actionlint() -> None:
    result = _run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "e2e-kind.yaml" in result.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ github.nonexistent_context_value }}\n"
        "      - uses: actions/checkout\n",
        encoding="utf-8",
    )
    result = _run(str(bad))
    assert result.returncode != 0
    assert "bad.yaml" in result.stdout


def test_workflow_shape() -> None:
    """GitHub runs the same script as every CI run (.ci/run, kind included), on the runner's
    own Docker engine, with the project's caches."""
    doc = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    triggers = doc[True] if True in doc else doc["on"]  # YAML 1.1 reads `on` as a boolean
    assert {"push", "pull_request"} <= set(triggers)
    jobs = doc["jobs"]
    assert set(jobs) == {"ci"}
    steps = jobs["ci"]["steps"]
    runs = [s.get("run", "") for s in steps]
    assert any(r.endswith("bash .ci/run") for r in runs)
    assert jobs["ci"]["timeout-minutes"] <= 90
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert uploads and uploads[0].get("if") == "failure()"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci and "make e2e-kind" in ci
    _pinned_by_major(doc)
    assert re.fullmatch(r"v\d+\.\d+\.\d+", doc["env"]["KIND_VERSION"])
    prepare = (ROOT / "hack" / "kind" / "prepare.sh").read_text(encoding="utf-8")
    assert f"KIND_VERSION={doc['env']['KIND_VERSION'][1:]}" in prepare


def _pinned_by_major(doc: dict) -> None:  # type: ignore[type-arg]
    for job in doc["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]


def test_release_publishes_what_the_chart_installs() -> None:
    """A tag builds both images for two architectures with an SBOM, signs them, and pushes
    the chart as an OCI artifact; the chart's default images are those references."""
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yaml").read_text())
    triggers = doc[True] if True in doc else doc["on"]
    assert triggers == {"push": {"tags": ["v*.*.*"]}}
    images = doc["jobs"]["images"]
    built = {m["image"]: m["dockerfile"] for m in images["strategy"]["matrix"]["include"]}
    assert built == {
        "trustspace-operator": "operator/Dockerfile",
        "trustspace-agent": "edge-agent/Dockerfile",
    }
    (build,) = [s for s in images["steps"] if str(s.get("uses", "")).startswith("docker/build-")]
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert build["with"]["sbom"] is True and build["with"]["push"] is True
    assert any("cosign sign" in s.get("run", "") for s in images["steps"])
    chart_runs = " ".join(s.get("run", "") for s in doc["jobs"]["chart"]["steps"])
    assert "helm push" in chart_runs and "oci://" in chart_runs and "cosign sign" in chart_runs
    _pinned_by_major(doc)
    values = yaml.safe_load((ROOT / "charts" / "trustspace" / "values.yaml").read_text())
    chart = yaml.safe_load((ROOT / "charts" / "trustspace" / "Chart.yaml").read_text())
    registry = f"{doc['env']['REGISTRY']}/{doc['env']['OWNER']}"
    assert values["image"]["repository"] == f"{registry}/trustspace-operator"
    assert values["agentImage"] == f"{registry}/trustspace-agent:{chart['appVersion']}"
