"""Fixtures for the crypto tests: every SM2 backend, and the real OpenSSL 3 CLI."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from crypto_support import OpenSSL, load_backend_or_skip

from trustspace.crypto import SM2Backend
from trustspace.crypto.sm2 import PREFERENCE


@pytest.fixture(params=PREFERENCE)
def backend(request: pytest.FixtureRequest) -> SM2Backend:
    """Each SM2 backend in turn (skipped, with the reason, where it cannot load)."""
    return load_backend_or_skip(str(request.param))


@pytest.fixture(scope="session")
def openssl_bin() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.fail("the openssl CLI (OpenSSL 3) is required for the interop tests")
    out = subprocess.run([path, "version"], capture_output=True, text=True, check=True).stdout
    if not out.startswith("OpenSSL 3."):
        pytest.fail(f"interop tests need the OpenSSL 3 CLI, found: {out.strip()}")
    return path


@pytest.fixture
def openssl(openssl_bin: str, tmp_path: Path) -> OpenSSL:
    return OpenSSL(openssl_bin, tmp_path)
