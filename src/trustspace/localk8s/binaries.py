"""Finding the control-plane binaries (kube-apiserver, etcd, kubectl, helm).

`hack/k8s-bin.sh` builds or finds them; this module only locates its result, so tests and
the quickstart never build anything behind the user's back without saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REQUIRED = ("kube-apiserver", "etcd", "kubectl")
ENV_VARS = ("TRUSTSPACE_K8S_BIN", "KUBEBUILDER_ASSETS")


class BinariesNotFound(RuntimeError):
    """The control-plane binaries are missing; the message says how to get them."""


def repo_root() -> Path | None:
    """The source checkout this package runs from, if it runs from one (editable install)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "hack" / "k8s-bin.sh").is_file() and (parent / "pyproject.toml").is_file():
            return parent
    return None


def _missing(directory: Path, names: tuple[str, ...]) -> list[str]:
    return [n for n in names if not os.access(directory / n, os.X_OK)]


def find_bin_dir(*, build: bool = True) -> Path:
    """The directory holding the binaries.

    Order: $TRUSTSPACE_K8S_BIN, $KUBEBUILDER_ASSETS, then `hack/k8s-bin.sh` (which returns its
    cache at once when warm and otherwise builds, printing progress to stderr).
    """
    for var in ENV_VARS:
        value = os.environ.get(var)
        if not value:
            continue
        directory = Path(value)
        missing = _missing(directory, REQUIRED)
        if not missing:
            return directory
        raise BinariesNotFound(
            f"${var}={value} lacks {', '.join(missing)}; run hack/k8s-bin.sh and set "
            f"{var} to the directory it prints, or unset {var}"
        )
    root = repo_root()
    script = root / "hack" / "k8s-bin.sh" if root else None
    if script is None or not build:
        raise BinariesNotFound(
            "kube-apiserver, etcd and kubectl were not found: run hack/k8s-bin.sh from a "
            "trustspace checkout and set TRUSTSPACE_K8S_BIN to the directory it prints"
        )
    if shutil.which("bash") is None:
        raise BinariesNotFound("bash is needed to run hack/k8s-bin.sh")
    result = subprocess.run(
        ["bash", str(script)], stdout=subprocess.PIPE, stderr=sys.stderr, text=True, check=False
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise BinariesNotFound(
            f"hack/k8s-bin.sh failed (exit {result.returncode}); its messages above say why"
        )
    directory = Path(lines[-1])
    missing = _missing(directory, REQUIRED)
    if missing:
        raise BinariesNotFound(f"hack/k8s-bin.sh printed {directory}, which lacks {missing}")
    return directory
