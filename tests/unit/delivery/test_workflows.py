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
    doc = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    triggers = doc[True] if True in doc else doc["on"]  # YAML 1.1 reads `on` as a boolean
    assert {"push", "pull_request"} <= set(triggers)
    jobs = doc["jobs"]
    assert set(jobs) == {"test", "e2e-kind"}
    assert any(s.get("run") == "make test" for s in jobs["test"]["steps"])
    e2e = jobs["e2e-kind"]["steps"]
    runs = [s.get("run", "") for s in e2e]
    assert any("hack/kind-up.sh" in r for r in runs)
    # kind-up's exports reach the suite, which then drives the kind clusters.
    assert any("GITHUB_ENV" in r and "kind-up.sh" in r for r in runs)
    assert any(re.search(r"pytest .*-m e2e .*tests/e2e/dataspace\b", r) for r in runs)
    down = [s for s in e2e if "hack/kind-down.sh" in s.get("run", "")]
    assert down and down[0].get("if") == "always()"
    uploads = [s for s in e2e if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert uploads and uploads[0].get("if") == "failure()"
    # Actions pinned by major version tag; kind pinned to an exact release.
    for job in jobs.values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]
    assert re.fullmatch(r"v\d+\.\d+\.\d+", doc["env"]["KIND_VERSION"])
