"""A whole data space on one machine: three control planes and the real processes.

Hub cluster (CN) with the operator and the audit collector; two edge clusters (VN, TH);
one agent per node as a local process, fed by `mounts.MountSyncer` the way the kubelet
feeds a Pod. Everything is the shipped code path: the operator provisions and keys the
nodes in their clusters, compiles the sample policies, publishes the signed bundles; the
agents heartbeat, stream audit and enforce transfers; the collector verifies and reports.
"""

from __future__ import annotations

import base64
import json
import os
import sys
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
from trustspace.quickstart.mounts import Mount, MountSyncer, write_atomic

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

Say = Callable[[str], None]


def _approver_names(doc: Any) -> Iterator[str]:
    """Every approver named anywhere in a policy or profile document."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == "approvers" and isinstance(value, list):
                for item in value:
                    if isinstance(item, dict) and "name" in item:
                        yield str(item["name"])
            else:
                yield from _approver_names(value)
    elif isinstance(doc, list):
        for item in doc:
            yield from _approver_names(item)


@dataclass
class Agent:
    node: str
    dir: Path
    api_port: int
    inbound_port: int
    process: Process | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"


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

    # ----- lifecycle -----------------------------------------------------------------------
    def start(self, bin_dir: Path) -> None:
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
        self._mounts()
        self.say("starting the audit collector")
        self._start_collector()
        self.say("starting one agent per node")
        self._start_agents()

    def stop(self) -> None:
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
        pseudonym = base64.b64encode(os.urandom(32)).decode()
        hub.kubectl(
            "create",
            "secret",
            "generic",
            "health-pseudonym-key",
            "-n",
            NAMESPACE,
            f"--from-literal=sm3-hmac-key={pseudonym}",
        )
        samples = root / "config" / "samples"
        for name in SAMPLE_FILES:
            hub.kubectl("apply", "-n", NAMESPACE, "-f", str(samples / name))
        self._approvers(root, samples)

    def _approvers(self, root: Path, samples: Path) -> None:
        """An SM2 key for every approver the policies and profiles name (the people who
        would sign approvals in a real deployment)."""
        names: set[str] = set()
        sources = [samples / n for n in SAMPLE_FILES]
        sources += sorted((root / "src" / "trustspace" / "policy" / "profiles").glob("*.yaml"))
        for path in sources:
            names.update(_approver_names(yaml.safe_load(path.read_text())))
        keys_dir = self.root / "approvers"
        public: dict[str, list[str]] = {}
        for name in sorted(names):
            key = SM2PrivateKey.generate()
            self.approver_keys[name] = key
            write_atomic(keys_dir / f"{name}.pem", key.to_pem())
            public[name] = [key.public_key().to_pem().decode()]
        self.approver_keys_file = keys_dir / "approvers.yaml"
        write_atomic(self.approver_keys_file, yaml.safe_dump(public).encode(), mode=0o644)

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
            ns = NAMESPACE if cluster == "hub" else EDGE_NAMESPACE
            base = self.root / "nodes" / node
            mounts.append(Mount(node, self.kube(cluster), ns, base / "key", base / "trust"))
        self.syncer = MountSyncer(mounts)
        self._wait(self.syncer.sync_all, "keys and bundles in every node's cluster", 60)
        self.syncer.start()

    def _start_collector(self) -> None:
        hub_dir = self.root / "nodes" / "cn-nanning"
        config = {
            "listenHost": "127.0.0.1",
            "listenPort": self.collector_port,
            "tlsCertFile": str(self.tls_cert),
            "tlsKeyFile": str(self.tls_key),
            "database": str(self.root / "collector" / "audit.db"),
            "trustBundleFile": str(hub_dir / "trust" / "bundle.json"),
            "hubKeyFile": str(hub_dir / "key" / "key.pem"),
            "trustAnchorFile": str(hub_dir / "trust" / "hub.pem"),
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

    def _start_agents(self) -> None:
        for node in NODES:
            self.agents[node] = Agent(node, self.root / "nodes" / node, free_port(), free_port())
        peers = {n: f"https://127.0.0.1:{a.inbound_port}" for n, a in self.agents.items()}
        secrets_dir = self.root / "secrets"
        pseudonym = self.hub.kubectl(
            "get",
            "secret",
            "health-pseudonym-key",
            "-n",
            NAMESPACE,
            "-o",
            "jsonpath={.data.sm3-hmac-key}",
        ).stdout
        write_atomic(
            secrets_dir / "health-pseudonym-key" / "sm3-hmac-key", base64.b64decode(pseudonym)
        )
        for node, agent in self.agents.items():
            trust = agent.dir / "trust"
            config = {
                "node": node,
                "storePath": str(agent.dir / "data" / "audit.db"),
                "storeMaxBytes": 256 * 1024 * 1024,
                "keyFile": str(agent.dir / "key" / "key.pem"),
                "collectorUrl": f"https://127.0.0.1:{self.collector_port}",
                "caFile": str(self.ca_file),
                "heartbeatSeconds": 2.0,
                "listenHost": "127.0.0.1",
                "listenPort": agent.api_port,
                "gateway": {
                    "policyBundleFile": str(trust / "policy-bundle.json"),
                    "trustBundleFile": str(trust / "bundle.json"),
                    "hubPublicKeyFile": str(trust / "hub.pem"),
                    "inboundHost": "127.0.0.1",
                    "inboundPort": agent.inbound_port,
                    "tlsCertFile": str(self.tls_cert),
                    "tlsKeyFile": str(self.tls_key),
                    "peerCaFile": str(self.ca_file),
                    "peers": {n: url for n, url in peers.items() if n != node},
                    "approverKeysFile": str(self.approver_keys_file),
                    "secretsDir": str(secrets_dir),
                    "stateDir": str(agent.dir / "state"),
                    "linkReportSeconds": 2.0,
                },
            }
            path = agent.dir / "agent.yaml"
            write_atomic(path, yaml.safe_dump(config).encode())
            agent.process = self._spawn(f"agent-{node}", ["agent", "run", "--config", str(path)])

    # ----- waiting -------------------------------------------------------------------------
    def _wait(self, done: Callable[[], Any], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = 0.0
        while time.monotonic() < deadline:
            for proc in self.processes:
                if not proc.running():
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
