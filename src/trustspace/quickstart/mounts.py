"""What the kubelet would do for a Pod, done for agents running as local processes.

The operator writes each node's key Secret and the data space's trust/policy ConfigMap into
the node's cluster; an agent in a Pod would see them as mounted files, refreshed after a
rotation. Here a thread copies them into the agent's directory (atomically: write, then
rename), so key rotation and policy changes reach local agents the same way.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from trustspace.kube import ApiError, Kube, Unreachable
from trustspace.kube import kinds as k

log = logging.getLogger(__name__)
TRUST_CONFIGMAP = "trustspace-trust-bundle"


@dataclass(frozen=True)
class Mount:
    """One node's mounts: its key Secret and the trust ConfigMap, from its own cluster."""

    node: str
    kube: Kube
    namespace: str
    key_dir: Path
    trust_dir: Path

    @property
    def key_secret(self) -> str:
        return f"{self.node}-sm2-key"


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> bool:
    """Replace `path` with `data` unless it already holds it; True when it changed."""
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)
    return True


def sync_once(mount: Mount) -> bool:
    """Copy the node's Secret and ConfigMap into files; True when everything was there."""
    secret = mount.kube.get(k.SECRET, mount.key_secret, mount.namespace)
    cm = mount.kube.get(k.CONFIG_MAP, TRUST_CONFIGMAP, mount.namespace)
    if secret is None or cm is None:
        return False
    for key, value in (secret.get("data") or {}).items():
        write_atomic(mount.key_dir / key, base64.b64decode(value))
    for key, value in (cm.get("data") or {}).items():
        write_atomic(mount.trust_dir / key, value.encode(), mode=0o644)
    return True


class MountSyncer:
    def __init__(self, mounts: list[Mount], every: float = 1.0) -> None:
        self.mounts = mounts
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mounts", daemon=True)

    def sync_all(self) -> bool:
        ok = True
        for mount in self.mounts:
            try:
                ok = sync_once(mount) and ok
            except (ApiError, Unreachable) as exc:
                log.warning("mount sync for %s: %s", mount.node, exc)
                ok = False
        return ok

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sync_all()
