"""A real Kubernetes control plane on loopback: etcd + kube-apiserver, envtest-style.

No kubelet runs, so Pods never start; optional kube-controller-manager gives garbage
collection and workload controllers. Several clusters (a hub and edges) run side by side,
each with its own etcd, certificates, ports and admin kubeconfig.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import yaml

from trustspace.localk8s.binaries import find_bin_dir
from trustspace.localk8s.pki import CertificateAuthority, service_account_keys
from trustspace.localk8s.processes import (
    ControlPlaneError,
    Process,
    ensure_port_free,
    free_port,
    pid_alive,
    terminate_pid,
)

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

ADMIN_USER = "trustspace-admin"
SERVICE_CIDR = "10.0.0.0/16"  # room for a Service per node in the 1,000-node benchmark
_START_ATTEMPTS = 3


def default_root() -> Path:
    """Where detached clusters keep their state (test clusters use a temporary directory)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("TRUSTSPACE_CLUSTERS", Path(base) / "trustspace" / "clusters"))


def _stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class KubectlError(subprocess.CalledProcessError):
    """kubectl failed; str() carries its stderr so test failures explain themselves."""

    def __str__(self) -> str:
        return f"kubectl {' '.join(self.cmd[3:])} exited {self.returncode}: {self.stderr.strip()}"


@dataclass
class ClusterState:
    """What a detached cluster leaves on disk so that `down` and `kubeconfig` find it later."""

    name: str
    host: str
    api_port: int
    etcd_port: int
    etcd_peer_port: int
    pids: dict[str, int]

    @property
    def server(self) -> str:
        return f"https://{self.host}:{self.api_port}"


class LocalCluster:
    """One control plane: etcd and kube-apiserver (and optionally kube-controller-manager).

    `start()` is idempotent; `stop()` keeps data, certificates and ports so that a restart
    serves the same objects at the same address (tests of an edge outage rely on it);
    `destroy()` removes everything.
    """

    def __init__(
        self,
        name: str,
        *,
        root: Path | None = None,
        bin_dir: Path | None = None,
        host: str = "127.0.0.1",
        api_port: int | None = None,
        etcd_port: int | None = None,
        controller_manager: bool = False,
        durable: bool = False,
        detach: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if not name or not name.replace("-", "").isalnum():
            raise ValueError(f"cluster name {name!r}: use letters, digits and '-'")
        self.name = name
        self._own_root = root is None and not detach
        base = root or (default_root() if detach else Path(tempfile.mkdtemp(prefix="ts-k8s-")))
        self.dir = base / name
        self._bin_dir = bin_dir
        self.host = host
        self._explicit_ports = {"api": api_port, "etcd": etcd_port}
        self.api_port = api_port or 0
        self.etcd_port = etcd_port or 0
        self.etcd_peer_port = 0
        self.controller_manager = controller_manager
        self.durable = durable
        self.detach = detach
        self._log = log or _stderr_log
        self._procs: dict[str, Process] = {}
        self.started_in: float | None = None

    # ----- paths and addresses -------------------------------------------------------------
    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = find_bin_dir()
        return self._bin_dir

    @property
    def server(self) -> str:
        return f"https://{self.host}:{self.api_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def pki(self) -> Path:
        return self.dir / "pki"

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    def env(self) -> dict[str, str]:
        """Environment for a child that should talk to this cluster with kubectl or a client."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        return env

    # ----- lifecycle -----------------------------------------------------------------------
    def start(self, timeout: float = 90.0) -> Self:
        """Start etcd and the API server and wait until /readyz answers."""
        self.launch()
        self.wait_ready(timeout)
        return self

    def launch(self) -> None:
        """Start the processes without waiting (lets a fleet start its members together)."""
        if self._procs.get("kube-apiserver") and self._procs["kube-apiserver"].running():
            return
        self._t0 = time.monotonic()
        self._attempt = 1
        self._prepare()
        self._launch_etcd()

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._wait_etcd_then_apiserver(deadline)
                break
            except ControlPlaneError as exc:
                if not self._may_retry(exc):
                    self.stop()
                    raise
                self._log(f"[{self.name}] port collision on start, retrying with new ports")
                self.stop()
                self._attempt += 1
                self.api_port = self.etcd_port = self.etcd_peer_port = 0
                self._prepare()
                self._launch_etcd()
        self.started_in = time.monotonic() - self._t0
        if self.detach:
            self._write_state()
        self._log(f"[{self.name}] ready at {self.server} in {self.started_in:.1f}s")

    def _may_retry(self, exc: ControlPlaneError) -> bool:
        collided = "address already in use" in str(exc)
        auto_ports = not any(self._explicit_ports.values())
        return collided and auto_ports and self._attempt < _START_ATTEMPTS

    def launch_apiserver(self, deadline: float) -> None:
        """Wait for etcd, then start the API server without waiting for it."""
        if "kube-apiserver" not in self._procs:
            remaining = max(1.0, deadline - time.monotonic())
            self._procs["etcd"].wait_healthy(self._etcd_healthy, remaining)
            self._launch_apiserver()

    def _wait_etcd_then_apiserver(self, deadline: float) -> None:
        self.launch_apiserver(deadline)
        api = self._procs["kube-apiserver"]
        api.wait_healthy(self._api_ready, max(1.0, deadline - time.monotonic()))
        if self.controller_manager and "kube-controller-manager" not in self._procs:
            self._launch_controller_manager()

    def stop(self) -> None:
        """Stop the processes (API server first); data, certificates and ports are kept."""
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            proc = self._procs.pop(name, None)
            if proc is not None:
                proc.stop()
        state = self.dir / "state.json"
        if self.detach and state.exists():
            state.unlink()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self._own_root:
            shutil.rmtree(self.dir.parent, ignore_errors=True)

    def pids(self) -> dict[str, int]:
        """The running processes by name (etcd, kube-apiserver, ...), for CPU accounting."""
        return {name: p.pid for name, p in self._procs.items() if p.pid is not None}

    def running(self) -> bool:
        return all(
            self._procs.get(n) is not None and self._procs[n].running()
            for n in ("etcd", "kube-apiserver")
        )

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    # ----- set-up --------------------------------------------------------------------------
    def _prepare(self) -> None:
        for key, port in self._explicit_ports.items():
            if port is not None:
                ensure_port_free(self.host, port, f"{self.name} {key}")
        self.api_port = self.api_port or free_port(self.host)
        self.etcd_port = self.etcd_port or free_port(self.host)
        self.etcd_peer_port = self.etcd_peer_port or free_port(self.host)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        if not (self.pki / "ca.crt").exists():
            self._write_pki()
        self._write_kubeconfig()

    def _write_pki(self) -> None:
        self.pki.mkdir(parents=True, exist_ok=True)
        ca = CertificateAuthority(f"trustspace-local-{self.name}")
        ca.pair.write(self.pki / "ca.crt", self.pki / "ca.key")
        hosts = [self.host, "localhost", "127.0.0.1", "kubernetes", "kubernetes.default.svc"]
        ca.issue_server(hosts).write(self.pki / "apiserver.crt", self.pki / "apiserver.key")
        ca.issue_client(ADMIN_USER, ("system:masters",)).write(
            self.pki / "admin.crt", self.pki / "admin.key"
        )
        ca.issue_client("system:kube-controller-manager").write(
            self.pki / "kcm.crt", self.pki / "kcm.key"
        )
        service_account_keys().write(self.pki / "sa.pub", self.pki / "sa.key")

    def _kubeconfig_doc(self, user: str, cert: bytes, key: bytes) -> dict[str, Any]:
        ca = (self.pki / "ca.crt").read_bytes()
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": self.name,
                    "cluster": {"server": self.server, "certificate-authority-data": _b64(ca)},
                }
            ],
            "users": [
                {
                    "name": user,
                    "user": {"client-certificate-data": _b64(cert), "client-key-data": _b64(key)},
                }
            ],
            "contexts": [{"name": self.name, "context": {"cluster": self.name, "user": user}}],
            "current-context": self.name,
            "preferences": {},
        }

    def _write_kubeconfig(self) -> None:
        doc = self._kubeconfig_doc(
            ADMIN_USER, (self.pki / "admin.crt").read_bytes(), (self.pki / "admin.key").read_bytes()
        )
        _write_private(self.kubeconfig, yaml.safe_dump(doc, sort_keys=False))

    def user_kubeconfig(self, user: str, groups: Sequence[str] = ()) -> Path:
        """A kubeconfig for another identity (for least-privilege tests): CN=user, O=groups."""
        ca = CertificateAuthority.load(self.pki / "ca.crt", self.pki / "ca.key")
        pair = ca.issue_client(user, tuple(groups))
        safe = "".join(c if c.isalnum() else "-" for c in user)
        path = self.dir / f"kubeconfig-{safe}"
        _write_private(
            path, yaml.safe_dump(self._kubeconfig_doc(user, pair.cert_pem, pair.key_pem))
        )
        return path

    # ----- processes -----------------------------------------------------------------------
    def _launch_etcd(self) -> None:
        client = f"http://{self.host}:{self.etcd_port}"
        peer = f"http://{self.host}:{self.etcd_peer_port}"
        argv = [
            str(self.bin_dir / "etcd"),
            f"--name={self.name}",
            f"--data-dir={self.dir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster={self.name}={peer}",
            "--log-level=warn",
        ]
        if not self.durable:
            # Tests throw the data away; skipping fsync makes API writes several times faster.
            argv.append("--unsafe-no-fsync")
        self._spawn("etcd", argv)

    def _launch_apiserver(self) -> None:
        pki = self.pki
        argv = [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers=http://{self.host}:{self.etcd_port}",
            f"--bind-address={self.host}",
            f"--advertise-address={self.host}",
            f"--secure-port={self.api_port}",
            f"--cert-dir={pki}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            # No token controller runs without kube-controller-manager, and Pods never start
            # without a kubelet; the plugin would only reject Pods for missing accounts.
            "--disable-admission-plugins=ServiceAccount",
            "--profiling=false",
            "--v=1",
        ]
        self._spawn("kube-apiserver", argv)

    def _launch_controller_manager(self) -> None:
        # The controllers run as the controller manager's own user rather than an account
        # each (no tokens to mint), and that user's role lets the garbage collector see but
        # not delete the dependents of a custom resource: grant it the role the collector's
        # own account has in a real cluster, so owner references work as they do there.
        self.kubectl("apply", "--server-side", "-f", "-", input=_GC_BINDING)
        kubeconfig = self.dir / "kubeconfig-kcm"
        doc = self._kubeconfig_doc(
            "system:kube-controller-manager",
            (self.pki / "kcm.crt").read_bytes(),
            (self.pki / "kcm.key").read_bytes(),
        )
        _write_private(kubeconfig, yaml.safe_dump(doc))
        argv = [
            str(self.bin_dir / "kube-controller-manager"),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--leader-elect=false",
            f"--bind-address={self.host}",
            "--secure-port=0",
            f"--service-account-private-key-file={self.pki / 'sa.key'}",
            f"--root-ca-file={self.pki / 'ca.crt'}",
            "--use-service-account-credentials=false",
            "--controllers=*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-route,-service",
        ]
        self._spawn("kube-controller-manager", argv)

    def _spawn(self, name: str, argv: list[str]) -> None:
        proc = Process(f"{self.name}/{name}", argv, self.logs / f"{name}.log", detach=self.detach)
        proc.start()
        self._procs[name] = proc

    # ----- health --------------------------------------------------------------------------
    def _etcd_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://{self.host}:{self.etcd_port}/health", timeout=1
            ) as resp:
                return bool(json.load(resp).get("health") == "true")
        except (OSError, ValueError):
            return False

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        ctx.load_cert_chain(self.pki / "admin.crt", self.pki / "admin.key")
        return ctx

    def _api_ready(self) -> bool:
        return self.probe("/readyz")

    def probe(self, path: str = "/readyz", timeout: float = 1.0) -> bool:
        """True when the API server answers `path` with 200 (used by outage tests too)."""
        try:
            with urllib.request.urlopen(  # noqa: S310 - https URL to our own API server
                f"{self.server}{path}", timeout=timeout, context=self._ssl_context()
            ) as resp:
                return bool(resp.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    # ----- clients -------------------------------------------------------------------------
    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60.0,
        kubeconfig: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this cluster."""
        cmd = [
            str(self.bin_dir / "kubectl"),
            "--kubeconfig",
            str(kubeconfig or self.kubeconfig),
            *args,
        ]
        result = subprocess.run(
            cmd, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, cmd, result.stdout, result.stderr)
        return result

    def api_client(self, kubeconfig: Path | None = None) -> ApiClient:
        from kubernetes import config

        client: ApiClient = config.new_client_from_config(
            config_file=str(kubeconfig or self.kubeconfig)
        )
        return client

    # ----- detached clusters ---------------------------------------------------------------
    def _write_state(self) -> None:
        state = ClusterState(
            name=self.name,
            host=self.host,
            api_port=self.api_port,
            etcd_port=self.etcd_port,
            etcd_peer_port=self.etcd_peer_port,
            pids={n: p.pid for n, p in self._procs.items() if p.pid is not None},
        )
        (self.dir / "state.json").write_text(json.dumps(asdict(state), indent=2))

    @staticmethod
    def read_state(name: str, root: Path | None = None) -> ClusterState | None:
        path = (root or default_root()) / name / "state.json"
        try:
            return ClusterState(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    @staticmethod
    def stop_detached(name: str, root: Path | None = None, *, purge: bool = False) -> bool:
        """Stop a cluster started by `trustspace cluster up`; True when something ran."""
        base = root or default_root()
        state = LocalCluster.read_state(name, base)
        stopped = False
        if state is not None:
            for proc in ("kube-controller-manager", "kube-apiserver", "etcd"):
                pid = state.pids.get(proc)
                if pid and pid_alive(pid):
                    terminate_pid(pid, grace=10.0)
                    stopped = True
            (base / name / "state.json").unlink(missing_ok=True)
        if purge:
            shutil.rmtree(base / name, ignore_errors=True)
        return stopped


_GC_BINDING = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: trustspace-local:kube-controller-manager-gc
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:controller:generic-garbage-collector
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: User
    name: system:kube-controller-manager
"""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _write_private(path: Path, text: str) -> None:
    path.touch(mode=0o600)
    path.write_text(text)


class LocalFleet:
    """A hub and edges started together; each member is an independent LocalCluster."""

    def __init__(self, names: Iterable[str], **options: Any) -> None:
        given: Path | None = options.pop("root", None)
        self._own_root = given is None
        root = given or Path(tempfile.mkdtemp(prefix="ts-fleet-"))
        self.root = root
        self.clusters = {n: LocalCluster(n, root=root, **options) for n in names}

    def __getitem__(self, name: str) -> LocalCluster:
        return self.clusters[name]

    def __iter__(self) -> Iterator[LocalCluster]:
        return iter(self.clusters.values())

    def start(self, timeout: float = 120.0) -> Self:
        # Launch everything first, then wait: the members boot in parallel, while all the
        # children stay attached to this thread (PR_SET_PDEATHSIG follows the forking thread).
        deadline = time.monotonic() + timeout
        try:
            for cluster in self:
                cluster.launch()
            for cluster in self:
                cluster.launch_apiserver(deadline)
            for cluster in self:
                cluster.wait_ready(max(1.0, deadline - time.monotonic()))
        except BaseException:
            self.destroy()
            raise
        return self

    def stop(self) -> None:
        for cluster in self:
            cluster.stop()

    def destroy(self) -> None:
        for cluster in self:
            cluster.destroy()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.destroy()


@contextmanager
def local_cluster(name: str = "hub", **options: Any) -> Iterator[LocalCluster]:
    cluster = LocalCluster(name, **options)
    try:
        yield cluster.start()
    finally:
        cluster.destroy()
