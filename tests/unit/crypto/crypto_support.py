"""Helpers shared by the crypto tests (kept out of conftest so tests can import them)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from trustspace.crypto import BackendUnavailable, SM2Backend, get_backend


class OpenSSL:
    """Runs the openssl CLI inside a test's temporary directory."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run(
            [self.binary, *args], cwd=self.workdir, capture_output=True, timeout=60
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"openssl {' '.join(args)} failed ({proc.returncode}): "
                f"{proc.stderr.decode(errors='replace').strip()}"
            )
        return proc

    def version(self) -> str:
        return self.run("version").stdout.decode().split()[1]


def load_backend_or_skip(name: str) -> SM2Backend:
    try:
        return get_backend(name)
    except BackendUnavailable as exc:
        pytest.skip(f"SM2 backend {name} is not available here: {exc}")
