"""The data space the e2e suite runs against: started here, or one that already runs.

With ``TRUSTSPACE_E2E_HUB_KUBECONFIG``, ``TRUSTSPACE_E2E_EDGE1_KUBECONFIG``,
``TRUSTSPACE_E2E_EDGE2_KUBECONFIG`` and ``TRUSTSPACE_E2E_NAMESPACE`` set (what
``hack/kind-up.sh`` and ``trustspace quickstart --env-file`` print), the suite drives that
data space: the hub and the edges by kubeconfig, the agents' local APIs through
``kubectl port-forward`` to their StatefulSets (or at ``TRUSTSPACE_E2E_AGENT_URLS``,
``node=url,...``, when the agents are not Pods, as in the quickstart). Otherwise it starts a
`LocalDataSpace`. Either way the tests see the same small interface.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import trustspace.policy
from trustspace.crypto import SM2PrivateKey
from trustspace.kube import Kube
from trustspace.kube import kinds as k
from trustspace.quickstart.space import APPROVERS_CONFIGMAP, approver_names, register_approvers

ENV_HUB = "TRUSTSPACE_E2E_HUB_KUBECONFIG"
ENV_EDGES = ("TRUSTSPACE_E2E_EDGE1_KUBECONFIG", "TRUSTSPACE_E2E_EDGE2_KUBECONFIG")
ENV_NAMESPACE = "TRUSTSPACE_E2E_NAMESPACE"
ENV_AGENT_URLS = "TRUSTSPACE_E2E_AGENT_URLS"
#: Set by the quickstart, whose collector is a process: its database file and CA file.
ENV_COLLECTOR_DB = "TRUSTSPACE_E2E_COLLECTOR_DB"
ENV_COLLECTOR_CA = "TRUSTSPACE_E2E_COLLECTOR_CA"
#: The suite's cluster names (as LocalDataSpace calls them) -> the variable naming each.
CLUSTER_ENV = {"hub": ENV_HUB, "edge-vn": ENV_EDGES[0], "edge-th": ENV_EDGES[1]}
#: The agent's local API port in its container (trustspace_operator.render.API_PORT).
AGENT_API_PORT = 8780


def external_requested() -> bool:
    return bool(os.environ.get(ENV_HUB))


@dataclass
class EvidenceInputs:
    trust_bundle: Path
    hub_key: Path
    collector_ca: Path
    collector_url: str
    node_key: Path


@dataclass
class RemoteAgent:
    node: str
    api: str


class PortForward:
    """``kubectl port-forward`` to one agent's API; the local port kubectl picked."""

    _FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+)")

    def __init__(self, kubectl: Path, kubeconfig: str, namespace: str, target: str) -> None:
        self.proc = subprocess.Popen(
            [
                str(kubectl),
                "--kubeconfig",
                kubeconfig,
                "-n",
                namespace,
                "port-forward",
                target,
                f":{AGENT_API_PORT}",
                "--address",
                "127.0.0.1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"kubectl port-forward {target} exited: rc {self.proc.wait()}")
            match = self._FORWARDING.search(line)
            if match:
                self.port = int(match.group(1))
                return
        self.stop()
        raise TimeoutError(f"kubectl port-forward {target} did not start in 60s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@dataclass
class ExternalDataSpace:
    """A data space someone else runs (kind, or a quickstart in another process)."""

    kubectl: Path
    root: Path
    namespace: str = field(default_factory=lambda: os.environ[ENV_NAMESPACE])
    agents: dict[str, RemoteAgent] = field(default_factory=dict)
    approver_keys: dict[str, SM2PrivateKey] = field(default_factory=dict)
    forwards: list[PortForward] = field(default_factory=list)

    def kubeconfig(self, cluster: str = "hub") -> Path:
        return Path(os.environ[CLUSTER_ENV[cluster]])

    def kube(self, cluster: str = "hub") -> Kube:
        return Kube.from_kubeconfig(str(self.kubeconfig(cluster)))

    def node_namespace(self, node: str) -> str:
        body = self.kube().get(k.DATASPACENODE, node, self.namespace) or {}
        placement = (body.get("spec") or {}).get("placement") or {}
        return str(placement.get("namespace") or self.namespace)

    def cluster_of(self, node: str) -> str:
        """The suite's name for the cluster a node runs in (by its kubeconfig Secret)."""
        body = self.kube().get(k.DATASPACENODE, node, self.namespace) or {}
        placement = (body.get("spec") or {}).get("placement") or {}
        if placement.get("mode") != "Remote":
            return "hub"
        return {"vn-hanoi": "edge-vn", "th-rayong": "edge-th"}[node]

    def approver_key_file(self, name: str) -> Path:
        return self.root / "approvers" / f"{name}.pem"

    def ready_nodes(self) -> dict[str, dict[str, str]]:
        return ready_nodes(self.kube(), self.namespace)

    def start(self) -> ExternalDataSpace:
        self._register_approvers()
        self._wait_settled()
        urls = os.environ.get(ENV_AGENT_URLS, "")
        for item in filter(None, urls.split(",")):
            node, url = item.split("=", 1)
            self.agents[node] = RemoteAgent(node, url)
        for node in ("cn-nanning", "vn-hanoi", "th-rayong"):
            if node in self.agents:
                continue
            forward = PortForward(
                self.kubectl,
                str(self.kubeconfig(self.cluster_of(node))),
                self.node_namespace(node),
                f"statefulset/{node}-agent",
            )
            self.forwards.append(forward)
            self.agents[node] = RemoteAgent(node, f"http://127.0.0.1:{forward.port}")
        return self

    def stop(self) -> None:
        for forward in self.forwards:
            forward.stop()

    def _register_approvers(self) -> None:
        """This run's own approvers, registered as a data-space admin would: public keys
        into the approvers ConfigMap, private keys kept here. Then wait until the operator
        has shipped them to every node's trust ConfigMap."""
        policies = [p.get("spec") for p in self.kube().list(k.TRANSFERPOLICY, self.namespace)]
        shipped_profiles = Path(trustspace.policy.__file__).parent / "profiles"
        profiles = [yaml.safe_load(p.read_text()) for p in sorted(shipped_profiles.glob("*.yaml"))]
        names = sorted(set(approver_names([*policies, *profiles])))
        public: dict[str, list[str]] = {}
        for name in names:
            key = SM2PrivateKey.generate()
            self.approver_keys[name] = key
            path = self.approver_key_file(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(key.to_pem())
            public[name] = [key.public_key().to_pem().decode()]
        register_approvers(self._kubectl("hub"), self.namespace, public)
        deadline = time.monotonic() + 120
        for node in ("cn-nanning", "vn-hanoi", "th-rayong"):
            kube = self.kube(self.cluster_of(node))
            ns = self.node_namespace(node)
            while True:
                cm = kube.get(k.CONFIG_MAP, "trustspace-trust-bundle", ns) or {}
                shipped = yaml.safe_load((cm.get("data") or {}).get("approvers.yaml") or "{}")
                if all(p in (shipped or {}).get(n, []) for n, ps in public.items() for p in ps):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"approver keys from {APPROVERS_CONFIGMAP} never reached {node}'s trust "
                        "ConfigMap: is the operator running?"
                    )
                time.sleep(1)

    def evidence_inputs(self, workdir: Path) -> EvidenceInputs:
        """What an auditor outside the clusters holds: the trust ConfigMap's public parts,
        the collector's URL, and th-rayong's key, read with admin rights as files."""
        trust = self.kube().get(k.CONFIG_MAP, "trustspace-trust-bundle", self.namespace) or {}
        data = trust.get("data") or {}
        files = {}
        for key in ("bundle.json", "hub.pem", "collector-ca.crt"):
            files[key] = workdir / key
            given = os.environ.get(ENV_COLLECTOR_CA) if key == "collector-ca.crt" else None
            files[key].write_text(Path(given).read_text() if given else data[key])
        config = self.kube().get(k.CONFIG_MAP, "cn-nanning-agent-config", self.namespace) or {}
        url = yaml.safe_load(config["data"]["agent.yaml"])["collectorUrl"]
        edge = self.kube(self.cluster_of("th-rayong"))
        secret = edge.get(k.SECRET, "th-rayong-sm2-key", self.node_namespace("th-rayong")) or {}
        key_file = workdir / "th-rayong.pem"
        key_file.write_bytes(base64.b64decode(secret["data"]["key.pem"]))
        key_file.chmod(0o600)
        return EvidenceInputs(
            trust_bundle=files["bundle.json"],
            hub_key=files["hub.pem"],
            collector_ca=files["collector-ca.crt"],
            collector_url=str(url),
            node_key=key_file,
        )

    def audit_verify(self, inputs: EvidenceInputs) -> subprocess.CompletedProcess[str]:
        """`trustspace audit verify` where the record is: in the collector's Pod, on its
        database, with the hub key handed in on stdin (the Pod mounts only the bundle)."""
        database = os.environ.get(ENV_COLLECTOR_DB)
        if database:  # a collector process (the quickstart): its database is a file here
            return subprocess.run(
                [
                    str(Path(sys.executable).parent / "trustspace"), "audit", "verify",
                    "--db", database, "--trust-bundle", str(inputs.trust_bundle),
                    "--hub-key", str(inputs.hub_key),
                ],
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
        script = (
            "cat > /tmp/hub.pem && trustspace audit verify "
            "--db /var/lib/trustspace-collector/audit.db "
            "--trust-bundle /var/run/trustspace/trust/bundle.json --hub-key /tmp/hub.pem"
        )
        run = self._kubectl("hub")
        return run(  # type: ignore[no-any-return] - kubectl runner is untyped
            "-n", self.namespace, "exec", "-i", "deploy/trustspace-collector", "--",
            "sh", "-c", script, input=inputs.hub_key.read_text(), check=False,
        )  # fmt: skip

    def _wait_settled(self, timeout: float = 300) -> None:
        """Every node Ready again after this run's changes (approvers shipped, and whatever
        the previous suite did: kills, drains, restarts). A kubelet refreshes a mounted
        ConfigMap only every minute or so, so agents in Pods report a new trust bundle that
        much later than the quickstart's processes, which read the files at once."""
        wanted = ("Ready", "KeyReady", "AgentReady", "PolicySynced")
        deadline = time.monotonic() + timeout
        while True:
            nodes = self.ready_nodes()
            waiting = {n: c for n, c in nodes.items() if any(c.get(t) != "True" for t in wanted)}
            if nodes and not waiting:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"nodes not Ready after {timeout:.0f}s: {waiting}")
            time.sleep(3)

    def _kubectl(self, cluster: str) -> Any:
        def run(*args: str, input: str | None = None, check: bool = True) -> Any:
            cmd = [str(self.kubectl), "--kubeconfig", str(self.kubeconfig(cluster)), *args]
            return subprocess.run(
                cmd, input=input, capture_output=True, text=True, timeout=60, check=check
            )

        return run


def ready_nodes(kube: Kube, namespace: str) -> dict[str, dict[str, str]]:
    out = {}
    for node in kube.list(k.DATASPACENODE, namespace):
        conds = {c["type"]: c["status"] for c in (node.get("status") or {}).get("conditions", [])}
        out[node["metadata"]["name"]] = conds
    return out
