"""Helpers for tests that run the real operator process against local control planes."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from trustspace.localk8s import LocalCluster
from trustspace.localk8s.processes import Process

T = TypeVar("T")


class OperatorRunner:
    """One operator process watching the given namespaces; restartable, killable."""

    def __init__(self, cluster: LocalCluster, namespaces: list[str], workdir: Path) -> None:
        self.cluster = cluster
        self.namespaces = namespaces
        self.workdir = workdir
        self.proc: Process | None = None
        self.starts = 0

    def start(self, *, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> Process:
        self.starts += 1
        argv = [
            sys.executable,
            "-m",
            "trustspace.cli",
            "operator",
            "run",
            "--liveness-port",
            "0",
            "--metrics-port",
            "0",
            "--log-format",
            "json",
            *(a for ns in self.namespaces for a in ("--namespace", ns)),
            *args,
        ]
        if "--leader-elect" not in args:
            argv.append("--no-leader-elect")
        full_env = dict(os.environ)
        full_env.update(
            KUBECONFIG=str(self.cluster.kubeconfig),
            TRUSTSPACE_TICK="0.5",
            TRUSTSPACE_RESYNC="5",
            TRUSTSPACE_PUBLISH_WAIT="0",
            TRUSTSPACE_AGENT_RUNTIME="kubernetes",
        )
        full_env.update(env or {})
        proc = Process(
            f"operator-{self.starts}",
            argv,
            self.workdir / f"operator-{self.starts}.log",
            detach=False,
        )
        proc.start(full_env)
        self.proc = proc
        return proc

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(grace=10)
            self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.popen is not None:
            os.kill(self.proc.popen.pid, signal.SIGKILL)
            self.proc.popen.wait()
            self.proc = None

    def wait_exit(self, timeout: float = 60.0) -> int:
        assert self.proc is not None and self.proc.popen is not None
        code = self.proc.popen.wait(timeout)
        self.proc = None
        return code

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.workdir.glob("operator-*.log"))
        )


def wait_for(
    what: str, probe: Callable[[], T | None], timeout: float = 30.0, every: float = 0.2
) -> T:
    """Poll until `probe` returns something truthy; fail with `what` otherwise."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def node_manifest(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "role": "edge",
        "jurisdiction": "VN",
        "endpoint": f"https://{name}.example:8443",
    }
    base.update(spec)
    return {
        "apiVersion": "trustspace.io/v1alpha1",
        "kind": "DataSpaceNode",
        "metadata": {"name": name, "namespace": namespace},
        "spec": base,
    }


def apply(cluster: LocalCluster, obj: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))


def condition(body: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for c in ((body or {}).get("status") or {}).get("conditions", []):
        if c["type"] == type_:
            return dict(c)
    return None


def events_for(cluster: LocalCluster, namespace: str, name: str) -> list[dict[str, Any]]:
    out = cluster.kubectl(
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        f"involvedObject.name={name}",
        "-o",
        "yaml",
    ).stdout
    return list(yaml.safe_load(out).get("items", []))


def wait_empty(what: str, probe: Callable[[], list[str]], timeout: float = 30.0) -> None:
    """Poll until `probe` returns an empty list; the failure names what is left."""
    deadline = time.monotonic() + timeout
    left = probe()
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = probe()
    if left:
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; left: {left}")
