"""The kind clusters hack/e2e-kind.sh starts, as tests/kind sees them: real kubectl and kubelets."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SYSTEM_NS = "trustspace-system"
EDGE_NS = "trustspace-edge"
RELEASE = "trustspace"
#: Where each sample node's agent runs: (cluster, namespace); kind-up's `gateways` table.
AGENTS = {
    "cn-nanning": ("hub", "trustspace-demo"),
    "vn-hanoi": ("edge-1", EDGE_NS),
    "sg-singapore": ("edge-1", "trustspace-demo"),
    "th-rayong": ("edge-2", EDGE_NS),
    "my-kuantan": ("edge-2", EDGE_NS),
}


@dataclass
class Clusters:
    kubectl: Path
    configs: dict[str, str]
    namespace: str

    def run(
        self, cluster: str, *args: str, check: bool = True, timeout: float = 120, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.kubectl), "--kubeconfig", self.configs[cluster], *args]
        result = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False, **kw
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} -> {result.returncode}: {result.stderr}"
            )
        return result

    def json(self, cluster: str, *args: str) -> Any:
        return json.loads(self.run(cluster, *args, "-o", "json").stdout)

    def pods(self, cluster: str, namespace: str | None = None, selector: str = "") -> list[Any]:
        where = ["-n", namespace] if namespace else ["-A"]
        sel = ["-l", selector] if selector else []
        return list(self.json(cluster, "get", "pods", *where, *sel)["items"])

    def agent_pod(self, node: str) -> tuple[str, str, str]:
        """(cluster, namespace, pod name) of a node's agent Pod."""
        cluster, ns = AGENTS[node]
        return cluster, ns, f"{node}-agent-0"

    def dsn(self, node: str) -> Any:
        return self.json("hub", "-n", self.namespace, "get", "dsn", node)

    def conditions(self, node: str) -> dict[str, dict[str, Any]]:
        status = self.dsn(node).get("status") or {}
        return {c["type"]: c for c in status.get("conditions", [])}
