"""What the kubelet would do for an agent Pod, done for agents running as local processes.

The operator renders each node's StatefulSet and the ConfigMaps and Secrets its Pod mounts
(agent config, SM2 key, gateway TLS pair, trust and policy bundles, pseudonymisation keys)
in the node's own cluster. Here a thread reads that StatefulSet and copies every mounted
ConfigMap and Secret into a directory that stands for the Pod's filesystem, at the same
mount paths, atomically (write, then rename) and again after every change, so key
rotation and policy updates reach local agents the way they reach Pods.

`pod_config` then turns the rendered agent config into one a local process can run: the
same settings with paths under that directory and the container ports mapped to host
ports, as a Pod's own filesystem and network namespace would make them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustspace.kube import ApiError, Kube, Obj, Unreachable
from trustspace.kube import kinds as k

log = logging.getLogger(__name__)
TRUST_CONFIGMAP = "trustspace-trust-bundle"


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


@dataclass
class PodMount:
    """One node's agent Pod: the StatefulSet in the node's cluster, and where its
    filesystem lives on this machine."""

    node: str
    kube: Kube
    namespace: str
    root: Path
    #: Host port for each named container port (the Pod's network namespace, flattened
    #: onto this machine's loopback).
    host_ports: dict[str, int] = field(default_factory=dict)
    #: Digest of the Pod template last seen: a new one is a rollout (a new Pod).
    revision: str = ""

    @property
    def statefulset(self) -> str:
        return f"{self.node}-agent"

    def path(self, container_path: str) -> Path:
        """Where a path inside the container is on this machine."""
        return self.root / container_path.lstrip("/")


def _pod_spec(sts: Obj) -> Obj:
    spec: Obj = sts["spec"]["template"]["spec"]
    return spec


def _files(kube: Kube, volume: Obj, namespace: str) -> dict[str, bytes] | None:
    """The files a volume holds, or None when its object is missing."""
    if "configMap" in volume:
        cm = kube.get(k.CONFIG_MAP, volume["configMap"]["name"], namespace)
        if cm is None:
            return None
        return {key: str(v).encode() for key, v in (cm.get("data") or {}).items()}
    if "secret" in volume:
        secret = kube.get(k.SECRET, volume["secret"]["secretName"], namespace)
        if secret is None:
            return None
        return {key: base64.b64decode(v) for key, v in (secret.get("data") or {}).items()}
    return {}  # emptyDir, a volume claim: a directory, nothing to copy


def _optional(volume: Obj) -> bool:
    source = volume.get("configMap") or volume.get("secret") or {}
    return bool(source.get("optional"))


def sync_pod(mount: PodMount) -> bool:
    """Copy every mounted object into the Pod's directory; True when the Pod could start
    (its StatefulSet exists and every volume that is not optional is there)."""
    sts = mount.kube.get(k.STATEFUL_SET, mount.statefulset, mount.namespace)
    if sts is None:
        return False
    spec = _pod_spec(sts)
    template = json.dumps(sts["spec"]["template"], sort_keys=True).encode()
    mount.revision = hashlib.sha256(template).hexdigest()
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    # Volume claim templates are volumes too, by name, in a real Pod.
    for claim in sts["spec"].get("volumeClaimTemplates") or []:
        volumes.setdefault(claim["metadata"]["name"], {"name": claim["metadata"]["name"]})
    complete = True
    for container in spec.get("containers") or []:
        for vm in container.get("volumeMounts") or []:
            volume = volumes.get(vm["name"])
            if volume is None:
                return False  # the kubelet would refuse the Pod
            files = _files(mount.kube, volume, mount.namespace)
            target = mount.path(vm["mountPath"])
            target.mkdir(parents=True, exist_ok=True)
            if files is None:
                complete = complete and _optional(volume)
                continue
            mode = 0o600 if "secret" in volume else 0o644
            for name, data in files.items():
                write_atomic(target / name, data, mode=mode)
    return complete


def _container(mount: PodMount) -> Obj:
    sts = mount.kube.get(k.STATEFUL_SET, mount.statefulset, mount.namespace)
    if sts is None:
        raise LookupError(f"no StatefulSet {mount.namespace}/{mount.statefulset}")
    container: Obj = _pod_spec(sts)["containers"][0]
    return container


def container_args(mount: PodMount) -> list[str]:
    return list(_container(mount).get("args") or [])


def port_map(mount: PodMount) -> dict[int, int]:
    """Container port -> host port, by the names the StatefulSet gives its ports."""
    return {
        int(p["containerPort"]): mount.host_ports[p["name"]]
        for p in _container(mount).get("ports") or []
        if p.get("name") in mount.host_ports
    }


def _rooted(value: Any, mount: PodMount) -> Any:
    if isinstance(value, dict):
        return {key: _rooted(v, mount) for key, v in value.items()}
    if isinstance(value, list):
        return [_rooted(v, mount) for v in value]
    if isinstance(value, str) and value.startswith("/"):
        return str(mount.path(value))
    return value


def pod_config(rendered: dict[str, Any], mount: PodMount, ports: dict[int, int]) -> dict[str, Any]:
    """The rendered agent config as this machine runs it: paths under the Pod's directory,
    container ports on their host ports, listening on loopback only. Nothing else changes:
    peers, TLS material, approvers and policy come as the operator rendered them."""
    config: dict[str, Any] = _rooted(rendered, mount)
    config["listenHost"] = "127.0.0.1"
    config["listenPort"] = ports[int(rendered["listenPort"])]
    gateway = config.get("gateway")
    if isinstance(gateway, dict):
        gateway["inboundHost"] = "127.0.0.1"
        gateway["inboundPort"] = ports[int(rendered["gateway"]["inboundPort"])]
    return config


def named_files(config: Any) -> list[Path]:
    """Every file a config names (keys ending in ``File``), to wait for before starting."""
    out: list[Path] = []
    if isinstance(config, dict):
        for key, value in config.items():
            if key.endswith("File") and isinstance(value, str):
                out.append(Path(value))
            else:
                out.extend(named_files(value))
    return out


class MountSyncer:
    def __init__(self, mounts: list[PodMount], every: float = 1.0) -> None:
        self.mounts = mounts
        self.every = every
        #: Called after each periodic pass (the quickstart restarts rolled-out agents).
        self.on_synced: Callable[[], None] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mounts", daemon=True)

    def sync_all(self) -> bool:
        ok = True
        for mount in self.mounts:
            try:
                ok = sync_pod(mount) and ok
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
            if self.on_synced is not None:
                try:
                    self.on_synced()
                except Exception:  # the next pass tries again; the thread must live on
                    log.exception("after mount sync")
