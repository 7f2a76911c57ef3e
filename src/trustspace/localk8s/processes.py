"""Child processes of a local control plane: start, health-wait, stop, never leak.

Children get PR_SET_PDEATHSIG so that a killed test runner takes its etcd and API servers
with it; detached clusters (for humans, `trustspace cluster up`) skip it and record pids.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


class ControlPlaneError(RuntimeError):
    """A local control plane could not start or stop; the message says what to do."""


class PortInUse(ControlPlaneError):
    """A port that was asked for explicitly is taken."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def ensure_port_free(host: str, port: int, what: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise PortInUse(
                f"{what} port {host}:{port} is taken ({exc.strerror}); stop what listens there "
                f"(`ss -ltnp 'sport = :{port}'` shows it) or choose another port"
            ) from exc


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # Own process group, so a Ctrl-C in the terminal reaches us only through our parent.
    os.setpgrp()


class Process:
    """One child process with its log file."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, *, detach: bool) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.detach = detach
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str] | None = None) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} start {self.name}\n".encode())
            log.flush()
            try:
                self.popen = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=self.detach,
                    preexec_fn=None if self.detach else _die_with_parent,
                )
            except FileNotFoundError as exc:
                raise ControlPlaneError(
                    f"{self.name}: binary {self.argv[0]} not found; run hack/k8s-bin.sh"
                ) from exc
            except PermissionError as exc:
                raise ControlPlaneError(f"{self.name}: {self.argv[0]} is not executable") from exc

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def wait_healthy(self, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                code = self.popen.returncode if self.popen else None
                raise ControlPlaneError(
                    f"{self.name} exited with code {code} while starting; last lines of "
                    f"{self.log_path}:\n{self.log_tail()}"
                )
            if check():
                return
            time.sleep(0.1)
        raise ControlPlaneError(
            f"{self.name} did not become healthy within {timeout:.0f}s; last lines of "
            f"{self.log_path}:\n{self.log_tail()}"
        )

    def stop(self, grace: float = 10.0) -> None:
        if self.popen is None:
            return
        terminate_pid(self.popen.pid, grace, wait=self.popen.wait)
        self.popen = None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def terminate_pid(pid: int, grace: float, wait: Callable[[float], object] | None = None) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; reaps the child when we are its parent."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if wait is not None:
        try:
            wait(grace)
            return
        except subprocess.TimeoutExpired:
            pass
    else:
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.1)
        if not pid_alive(pid):
            return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if wait is not None:
        wait(grace)
