"""A whole data space on one machine: three control planes and the real processes.

Hub cluster (CN) with the operator and the audit collector; two edge clusters (VN, TH);
one agent per node as a local process, started from the StatefulSet, ConfigMaps and Secrets
the operator rendered in the node's cluster, which `mounts.MountSyncer` copies to files the
way the kubelet mounts them into a Pod. Everything is the shipped code path: the operator
provisions and keys the nodes in their clusters, issues their gateway TLS pairs, renders
their agent config (peers from the MirrorLinks), compiles the sample policies, publishes
the signed bundles; the agents heartbeat, stream audit and enforce transfers; the collector
verifies and reports. Only what a Pod's own filesystem and network namespace would give
differs: paths live under a directory per node, container ports map to free host ports.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trustspace.crypto import SM2PrivateKey
from trustspace.kube import Kube
from trustspace.kube import kinds as k
from trustspace.localk8s import LocalCluster, LocalFleet
from trustspace.localk8s.binaries import repo_root
from trustspace.localk8s.pki import CertificateAuthority
from trustspace.localk8s.processes import Process, free_port
from trustspace.quickstart.mounts import (
    MountSyncer,
    PodMount,
    container_args,
    named_files,
    pod_config,
    port_map,
    write_atomic,
)

NAMESPACE = "trustspace-demo"
EDGE_NAMESPACE = "trustspace-edge"
#: node -> (cluster, kubeconfig Secret the sample names, key in it)
NODES: dict[str, tuple[str, str | None, str]] = {
    "cn-nanning": ("hub", None, ""),
    "vn-hanoi": ("edge-vn", "vn-hanoi-kubeconfig", "kubeconfig"),
    "th-rayong": ("edge-th", "th-rayong-kubeconfig", "config"),
}
SAMPLE_FILES = (
    "dataspacenode_cn-nanning.yaml",
    "dataspacenode_vn-hanoi.yaml",
    "dataspacenode_th-rayong.yaml",
    "transferpolicy_logistics-auto.yaml",
    "transferpolicy_health-review.yaml",
    "transferpolicy_vn-core-important.yaml",
    "mirrorlink_vn-hanoi-to-cn-nanning.yaml",
    "mirrorlink_th-rayong-to-cn-nanning.yaml",
    "mirrorlink_cn-nanning-to-vn-hanoi.yaml",
)
TRUSTSPACE = [sys.executable, "-m", "trustspace.cli"]
#: The data space's approvers' public keys, read by the operator (space/gateway_extras.py).
APPROVERS_CONFIGMAP = "trustspace-approvers"
APPROVERS_LABEL = "trustspace.io/approvers=true"
PSEUDONYM_SECRET = "health-pseudonym-key"  # noqa: S105 - a Secret's name

Say = Callable[[str], None]


def approver_names(doc: Any) -> Iterator[str]:
    """Every approver named anywhere in a policy or profile document."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == "approvers" and isinstance(value, list):
                for item in value:
                    if isinstance(item, dict) and "name" in item:
                        yield str(item["name"])
            else:
                yield from approver_names(value)
    elif isinstance(doc, list):
        for item in doc:
            yield from approver_names(item)


@dataclass
class Agent:
    node: str
    dir: Path
    api_port: int
    inbound_port: int
    process: Process | None = None
    mount: PodMount | None = None
    #: The config the process runs: the operator's, as `mounts.pod_config` localises it.
    config: dict[str, Any] = field(default_factory=dict)
    #: The Pod template revision the process was started from.
    revision: str = ""

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def endpoint(self) -> str:
        """Where peers reach this node's gateway: its DataSpaceNode's `spec.endpoint`."""
        return f"https://127.0.0.1:{self.inbound_port}"

    @property
    def key_file(self) -> Path:
        return Path(self.config["keyFile"])


@dataclass
class LocalDataSpace:
    root: Path
    say: Say
    fleet: LocalFleet | None = None
    processes: list[Process] = field(default_factory=list)
    agents: dict[str, Agent] = field(default_factory=dict)
    syncer: MountSyncer | None = None
    collector_port: int = 0
    approver_keys: dict[str, SM2PrivateKey] = field(default_factory=dict)
    namespace: str = NAMESPACE
    _rolling_lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: bool = False

    # ----- lifecycle -----------------------------------------------------------------------
    def start(self, bin_dir: Path) -> None:
        for node in NODES:
            self.agents[node] = Agent(node, self.root / "nodes" / node, free_port(), free_port())
        self.say("starting control planes: hub (CN), edge-vn (VN), edge-th (TH)")
        self.fleet = LocalFleet(
            ["hub", "edge-vn", "edge-th"],
            root=self.root / "clusters",
            bin_dir=bin_dir,
            controller_manager=True,
        )
        self.fleet.start()
        self._pki()
        self.say("installing the trustspace.io CRDs and the samples")
        self._install()
        self.say("starting the operator (agents run as local processes: --agent-runtime external)")
        self._start_operator()
        self.say("waiting for the operator to key every node")
        self._wait(lambda: self._keyed() == len(NODES), "every node keyed", 120)
        self.say("mounting what the operator rendered for each agent Pod (as a kubelet would)")
        self._mounts()
        self.say("starting the audit collector")
        self._start_collector()
        self.say("starting one agent per node from its rendered StatefulSet and config")
        self._start_agents()
        # From now on a changed StatefulSet (a new config: a MirrorLink added, say) restarts
        # that agent from the new objects, as the StatefulSet controller would replace its Pod.
        assert self.syncer is not None
        self.syncer.on_synced = self._roll_out

    def stop(self) -> None:
        with self._rolling_lock:
            self._stopping = True
        if self.syncer is not None:
            self.syncer.stop()
        for proc in reversed(self.processes):
            proc.stop()
        if self.fleet is not None:
            self.fleet.destroy()

    @property
    def hub(self) -> LocalCluster:
        assert self.fleet is not None
        return self.fleet["hub"]

    def kube(self, cluster: str = "hub") -> Kube:
        assert self.fleet is not None
        return Kube.from_kubeconfig(str(self.fleet[cluster].kubeconfig))

    def kubeconfig(self, cluster: str = "hub") -> Path:
        assert self.fleet is not None
        return self.fleet[cluster].kubeconfig

    def approver_key_file(self, name: str) -> Path:
        """The SM2 private key of an approver (what the person would sign with)."""
        return self.root / "approvers" / f"{name}.pem"

    @staticmethod
    def node_namespace(node: str) -> str:
        return NAMESPACE if NODES[node][0] == "hub" else EDGE_NAMESPACE

    # ----- set-up --------------------------------------------------------------------------
    def _pki(self) -> None:
        self.ca = CertificateAuthority("trustspace quickstart")
        pki = self.root / "pki"
        pki.mkdir(parents=True, exist_ok=True)
        self.ca_file = pki / "ca.crt"
        self.ca_file.write_bytes(self.ca.cert_pem)
        server = self.ca.issue_server(["127.0.0.1", "localhost"])
        self.tls_cert, self.tls_key = pki / "tls.crt", pki / "tls.key"
        server.write(self.tls_cert, self.tls_key)

    def _install(self) -> None:
        root = repo_root()
        assert root is not None, "the quickstart runs from a trustspace checkout"
        hub = self.hub
        hub.kubectl("apply", "--server-side", "-f", str(root / "crds"))
        hub.kubectl("wait", "--for=condition=established", "--timeout=60s", "crd", "--all")
        hub.kubectl("create", "namespace", NAMESPACE)
        pseudonym = base64.b64encode(os.urandom(32)).decode()
        for node, (cluster, _, _) in NODES.items():
            # The health policy's pseudonymisation key where each node runs: its admin's
            # job (config/samples/README.md); the operator never copies key material.
            assert self.fleet is not None
            ns = self.node_namespace(node)
            target = self.fleet[cluster]
            if ns != NAMESPACE:
                target.kubectl("create", "namespace", ns, check=False)
            target.kubectl(
                "create",
                "secret",
                "generic",
                PSEUDONYM_SECRET,
                "-n",
                ns,
                f"--from-literal=sm3-hmac-key={pseudonym}",
                check=False,  # the hub's namespace holds it once for all its nodes
            )
        for cluster, secret, key in NODES.values():
            if secret is None:
                continue
            assert self.fleet is not None
            kubeconfig = self.fleet[cluster].kubeconfig.read_text()
            hub.kubectl(
                "create",
                "secret",
                "generic",
                secret,
                "-n",
                NAMESPACE,
                f"--from-literal={key}={kubeconfig}",
            )
        samples = root / "config" / "samples"
        self._approvers(root, samples)
        for name in SAMPLE_FILES:
            doc = yaml.safe_load((samples / name).read_text())
            agent = self.agents.get(doc["metadata"]["name"])
            if doc["kind"] == "DataSpaceNode" and agent is not None:
                # The sample's gateway host does not resolve here: peers dial this machine.
                doc["spec"]["endpoint"] = agent.endpoint
            hub.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=yaml.safe_dump(doc))

    def _approvers(self, root: Path, samples: Path) -> None:
        """An SM2 key for every approver the policies and profiles name (the people who
        would sign approvals in a real deployment)."""
        names: set[str] = set()
        sources = [samples / n for n in SAMPLE_FILES]
        sources += sorted((root / "src" / "trustspace" / "policy" / "profiles").glob("*.yaml"))
        for path in sources:
            names.update(approver_names(yaml.safe_load(path.read_text())))
        public: dict[str, list[str]] = {}
        for name in sorted(names):
            key = SM2PrivateKey.generate()
            self.approver_keys[name] = key
            write_atomic(self.approver_key_file(name), key.to_pem())
            public[name] = [key.public_key().to_pem().decode()]
        # Public keys only: the operator ships them to every node in the trust ConfigMap.
        register_approvers(self.hub.kubectl, NAMESPACE, public)

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Process:
        proc = Process(name, [*TRUSTSPACE, *args], self.root / "logs" / f"{name}.log", detach=False)
        full = dict(os.environ)
        full.update(env or {})
        proc.start(full)
        self.processes.append(proc)
        return proc

    def _start_operator(self) -> None:
        self.collector_port = free_port()
        self._spawn(
            "operator",
            [
                "operator",
                "run",
                "--namespace",
                NAMESPACE,
                "--leader-elect",
                "--lease-namespace",
                NAMESPACE,
                "--agent-runtime",
                "external",
                "--collector-url",
                f"https://127.0.0.1:{self.collector_port}",
                "--collector-ca-file",
                str(self.ca_file),
                "--tick",
                "2",
                "--liveness-port",
                str(free_port()),
                "--metrics-port",
                str(free_port()),
                "--log-format",
                "json",
            ],
            env={"KUBECONFIG": str(self.hub.kubeconfig)},
        )

    def _keyed(self) -> int:
        nodes = self.kube().list(k.DATASPACENODE, NAMESPACE)
        return sum(
            1 for n in nodes if ((n.get("status") or {}).get("activeKey") or {}).get("keyId")
        )

    def _mounts(self) -> None:
        mounts = []
        for node, (cluster, _, _) in NODES.items():
            agent = self.agents[node]
            agent.mount = PodMount(
                node,
                self.kube(cluster),
                self.node_namespace(node),
                agent.dir / "pod",
                {"api": agent.api_port, "gateway": agent.inbound_port},
            )
            mounts.append(agent.mount)
        self.syncer = MountSyncer(mounts)
        self._wait(self.syncer.sync_all, "every agent Pod's volumes in its cluster", 60)
        for agent in self.agents.values():
            assert agent.mount is not None
            agent.config = self._local_config(agent)
            agent.revision = agent.mount.revision  # what that config was rendered with
        # The trust ConfigMap is an optional volume (as for a Pod): keep syncing until the
        # files the configs name are all there.
        self.syncer.start()

        def missing() -> list[str]:
            return [
                str(p)
                for a in self.agents.values()
                for p in named_files(a.config)
                if not p.exists()
            ]

        try:
            self._wait(lambda: not missing(), "every file the rendered configs name", 60)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; missing: {', '.join(missing())}") from None

    def _local_config(self, agent: Agent) -> dict[str, Any]:
        assert agent.mount is not None
        args = container_args(agent.mount)
        rendered = agent.mount.path(args[args.index("--config") + 1])
        return pod_config(yaml.safe_load(rendered.read_text()), agent.mount, port_map(agent.mount))

    def _start_collector(self) -> None:
        # The collector runs beside the hub node and reads the hub's mounted key and bundle.
        hub_config = self.agents["cn-nanning"].config
        config = {
            "listenHost": "127.0.0.1",
            "listenPort": self.collector_port,
            "tlsCertFile": str(self.tls_cert),
            "tlsKeyFile": str(self.tls_key),
            "database": str(self.root / "collector" / "audit.db"),
            "trustBundleFile": hub_config["gateway"]["trustBundleFile"],
            "hubKeyFile": hub_config["keyFile"],
            "trustAnchorFile": hub_config["gateway"]["hubPublicKeyFile"],
            "checkpointIntervalSeconds": 2.0,
            "statusIntervalSeconds": 1.0,
            "statusSink": "kubernetes",
            "statusNamespace": NAMESPACE,
        }
        path = self.root / "collector" / "collector.yaml"
        write_atomic(path, yaml.safe_dump(config).encode())
        self._spawn(
            "collector",
            ["collector", "run", "--config", str(path)],
            env={"KUBECONFIG": str(self.hub.kubeconfig)},
        )

    def _agent_args(self, agent: Agent) -> list[str]:
        assert agent.mount is not None
        args = container_args(agent.mount)
        path = agent.dir / "agent.yaml"
        write_atomic(path, yaml.safe_dump(agent.config).encode())
        args[args.index("--config") + 1] = str(path)
        return [*TRUSTSPACE, *args]

    def _start_agents(self) -> None:
        for node, agent in self.agents.items():
            agent.process = self._spawn(f"agent-{node}", self._agent_args(agent)[len(TRUSTSPACE) :])

    def _roll_out(self) -> None:
        for node, agent in self.agents.items():
            mount, proc = agent.mount, agent.process
            if mount is None or proc is None or mount.revision == agent.revision:
                continue
            with self._rolling_lock:
                if self._stopping:
                    return
                self.say(f"{node}: its StatefulSet changed; restarting its agent (a rollout)")
                agent.config = self._local_config(agent)
                agent.revision = mount.revision
                proc.stop()
                proc.argv = self._agent_args(agent)
                proc.start(dict(os.environ))

    # ----- waiting -------------------------------------------------------------------------
    def _wait(self, done: Callable[[], Any], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = 0.0
        while time.monotonic() < deadline:
            for proc in self.processes:
                if not proc.running() and not self._rolling_lock.locked():
                    raise RuntimeError(
                        f"{proc.name} exited while waiting for {what}; its log "
                        f"{proc.log_path} ends with:\n{proc.log_tail(15)}"
                    )
            if done():
                return
            if time.monotonic() - last > 10:
                last = time.monotonic()
                self.say(f"  ... still waiting for {what}")
            time.sleep(0.5)
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")

    def ready_nodes(self) -> dict[str, dict[str, str]]:
        """Each node's condition statuses, for progress messages and the final verdict."""
        out = {}
        for node in self.kube().list(k.DATASPACENODE, NAMESPACE):
            conds = {
                c["type"]: c["status"] for c in (node.get("status") or {}).get("conditions", [])
            }
            out[node["metadata"]["name"]] = conds
        return out

    def wait_ready(self, timeout: float = 180) -> None:
        def all_ready() -> bool:
            nodes = self.ready_nodes()
            return len(nodes) == len(NODES) and all(
                c.get("Ready") == "True" for c in nodes.values()
            )

        try:
            self._wait(all_ready, "every DataSpaceNode Ready", timeout)
        except TimeoutError:
            detail = json.dumps(self.ready_nodes(), indent=1)
            raise TimeoutError(f"nodes not Ready after {timeout:.0f}s:\n{detail}") from None


def register_approvers(
    kubectl: Callable[..., Any], namespace: str, public: dict[str, list[str]]
) -> None:
    """Merge approvers' SM2 public keys into the data space's approvers ConfigMap."""
    current = kubectl(
        "get",
        "configmap",
        APPROVERS_CONFIGMAP,
        "-n",
        namespace,
        "-o",
        "jsonpath={.data.approvers\\.yaml}",
        check=False,
    )
    merged: dict[str, list[str]] = {}
    if current.returncode == 0 and current.stdout.strip():
        merged = {str(k): list(v) for k, v in (yaml.safe_load(current.stdout) or {}).items()}
    for name, pems in public.items():
        merged[name] = [*merged.get(name, []), *(p for p in pems if p not in merged.get(name, []))]
    doc = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": APPROVERS_CONFIGMAP,
            "namespace": namespace,
            "labels": dict([APPROVERS_LABEL.split("=")]),
        },
        "data": {"approvers.yaml": yaml.safe_dump(merged, sort_keys=True)},
    }
    kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
