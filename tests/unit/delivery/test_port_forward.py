"""The e2e suite's port-forward helper reads the local port kubectl picked, and stops it.

Kind (and so a kubelet to forward into) cannot run here; a stand-in kubectl prints what the
real one prints, so the parsing and the process handling are what is checked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.dataspace import AGENT_API_PORT, PortForward

FAKE_KUBECTL = """#!/usr/bin/env bash
set -euo pipefail
printf '%s\\n' "$@" > "$(dirname "$0")/args"
echo "Forwarding from 127.0.0.1:41234 -> 8780"
exec sleep 60
"""


def test_port_forward_reports_the_local_port_and_stops(tmp_path: Path) -> None:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(FAKE_KUBECTL)
    kubectl.chmod(0o755)
    forward = PortForward(kubectl, "/k/edge.kubeconfig", "trustspace-edge", "statefulset/a")
    try:
        assert forward.port == 41234
        args = (tmp_path / "args").read_text().split()
        assert args[:5] == [
            "--kubeconfig",
            "/k/edge.kubeconfig",
            "-n",
            "trustspace-edge",
            "port-forward",
        ]
        assert f":{AGENT_API_PORT}" in args and "statefulset/a" in args
    finally:
        forward.stop()
    assert forward.proc.poll() is not None


def test_port_forward_that_exits_is_an_error(tmp_path: Path) -> None:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text("#!/usr/bin/env bash\necho 'error: no pods'\nexit 1\n")
    kubectl.chmod(0o755)
    with pytest.raises(RuntimeError, match="exited"):
        PortForward(kubectl, "k", "ns", "statefulset/a")
