"""Start/stop behaviour: errors that say what to do, and no process left behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from trustspace.localk8s import ControlPlaneError, LocalCluster, PortInUse
from trustspace.localk8s.processes import pid_alive


def _wait_dead(pids: list[int], timeout: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if pid_alive(p)]
    return alive


def test_taken_port_is_reported_before_anything_starts(k8s_bin: Path, tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        c = LocalCluster("busy", root=tmp_path, bin_dir=k8s_bin, api_port=port)
        with pytest.raises(PortInUse, match=rf"127\.0\.0\.1:{port} is taken"):
            c.start()
        assert not c.running()


def test_missing_binary_is_named(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    c = LocalCluster("nobin", root=tmp_path, bin_dir=empty)
    with pytest.raises(ControlPlaneError, match=r"etcd.*not found.*k8s-bin\.sh"):
        c.start()


def test_destroy_leaves_no_process(k8s_bin: Path, tmp_path: Path) -> None:
    c = LocalCluster("short", root=tmp_path, bin_dir=k8s_bin).start()
    pids = [p.pid for p in c._procs.values() if p.pid]
    assert len(pids) == 2
    c.destroy()
    assert _wait_dead(pids) == []
    assert not (tmp_path / "short").exists()


def test_children_die_with_a_killed_parent(k8s_bin: Path, tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from trustspace.localk8s import LocalCluster
        c = LocalCluster("orphan", root=Path({str(tmp_path)!r}), bin_dir=Path({str(k8s_bin)!r}))
        c.start()
        print(" ".join(str(p.pid) for p in c._procs.values()), flush=True)
        time.sleep(600)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    line = parent.stdout.readline()
    pids = [int(p) for p in line.split()]
    assert len(pids) == 2, line
    assert all(pid_alive(p) for p in pids)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    assert _wait_dead(pids) == []


def test_cli_up_kubeconfig_down(k8s_bin: Path, tmp_path: Path) -> None:
    env = dict(os.environ, TRUSTSPACE_K8S_BIN=str(k8s_bin), TRUSTSPACE_CLUSTERS=str(tmp_path))
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "trustspace.cli", "cluster", *a],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    up = run("up", "human", "--no-controller-manager")
    assert up.returncode == 0, up.stderr
    kubeconfig = up.stdout.strip().splitlines()[-1]
    try:
        assert run("kubeconfig", "human").stdout.strip().splitlines()[-1] == kubeconfig
        assert "human\trunning" in run("list").stdout
        again = run("up", "human")
        assert "already runs" in again.stderr
        got = subprocess.run(
            [str(k8s_bin / "kubectl"), "--kubeconfig", kubeconfig, "get", "ns"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert got.returncode == 0 and "kube-system" in got.stdout
    finally:
        down = run("down", "human", "--purge")
    assert down.returncode == 0 and "stopped" in down.stderr
    assert run("kubeconfig", "human").returncode != 0
