"""The dataspace e2e suite against a data space it did not start, found by environment.

This is the path CI on kind takes (hack/kind-up.sh prints the TRUSTSPACE_E2E_* variables):
here the data space is the quickstart in its keep-running mode, in another process, and
the suite runs in a pytest subprocess that only knows the variables. `make e2e-kind` runs the
same suite against kind clusters, where the agents are reached through port-forwards (the
quickstart's agents are processes, so it names their URLs instead).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[2]
SUITE = TESTS / "e2e" / "dataspace"


def _read_env(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            out[key] = value
    return out


def test_dataspace_suite_runs_against_the_data_space_the_environment_names(
    k8s_bin: Path, tmp_path: Path
) -> None:
    env_file = tmp_path / "e2e.env"
    log = (tmp_path / "quickstart.log").open("w")
    base = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTSPACE_E2E_")}
    base["TRUSTSPACE_K8S_BIN"] = str(k8s_bin)
    base.pop("TRUSTSPACE_QUICKSTART_EXIT", None)
    quickstart = subprocess.Popen(
        [sys.executable, "-m", "trustspace.cli", "quickstart", "--env-file", str(env_file)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=base,
    )
    try:
        deadline = time.monotonic() + 300
        while not env_file.exists():
            assert quickstart.poll() is None, (tmp_path / "quickstart.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the quickstart was not Ready in 300s"
            time.sleep(1)
        variables = _read_env(env_file)
        assert set(variables) >= {
            "TRUSTSPACE_E2E_HUB_KUBECONFIG",
            "TRUSTSPACE_E2E_EDGE1_KUBECONFIG",
            "TRUSTSPACE_E2E_EDGE2_KUBECONFIG",
            "TRUSTSPACE_E2E_NAMESPACE",
        }
        suite = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "-m",
                "e2e",
                "-rs",
                "-q",
                str(SUITE),
            ],
            cwd=TESTS.parent,
            env={**base, **variables},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        report = suite.stdout[-6000:] + suite.stderr[-2000:]
        assert suite.returncode == 0, report
        # Everything ran against the external data space, the audit verification and the
        # offline evidence included: nothing skipped.
        passed = int(re.search(r"(\d+) passed", suite.stdout).group(1))  # type: ignore[union-attr]
        assert passed >= 7, report
        assert "skipped" not in suite.stdout, report
    finally:
        quickstart.send_signal(signal.SIGTERM)
        try:
            code = quickstart.wait(120)
        except subprocess.TimeoutExpired:
            quickstart.kill()
            raise
        log.close()
    assert code == 0, (tmp_path / "quickstart.log").read_text()[-3000:]
    assert "nothing left running" in (tmp_path / "quickstart.log").read_text()
