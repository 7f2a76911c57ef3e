"""NetworkPolicies, enforced in the clusters (kube-router's firewall), tried from a Pod.

The attack: any Pod in the data space's namespace opens the agent's local API (which takes
audit events without a credential) on port 8780. The operator's NetworkPolicy for the agent
admits peers on the gateway port and declared callers on the API port only, so the connection
is refused (rejected or dropped, as the enforcer does it), while the gateway port, the
collector's port and the operator's metrics stay open (the chart's policies). Then the same
probe without the policy: the API port opens, which shows it was the policy, not a missing
listener, that refused; the restarted operator puts the policy back, and every node stays
Ready across the restart (its policy bundle version continues, so agents accept it).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.kind import RELEASE, SYSTEM_NS, Clusters
from support.operator import wait_for

NODE = "cn-nanning"
API_PORT, GATEWAY_PORT, COLLECTOR_PORT, METRICS_PORT = 8780, 8443, 8443, 9090
PROBE = "netpol-probe"
CONNECT = (
    "import socket, sys\n"
    "s = socket.socket()\n"
    "s.settimeout(4)\n"
    "try:\n"
    "    s.connect((sys.argv[1], int(sys.argv[2])))\n"
    "    print('open')\n"
    "except OSError as e:\n"
    "    print(type(e).__name__)\n"
)


def _probe_pod(image: str) -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata:
  name: {PROBE}
  labels: {{app: {PROBE}}}
spec:
  terminationGracePeriodSeconds: 0
  securityContext:
    runAsNonRoot: true
    runAsUser: 20000
    seccompProfile: {{type: RuntimeDefault}}
  containers:
    - name: probe
      image: {image}
      imagePullPolicy: IfNotPresent
      command: [python3, -c, "import time; time.sleep(3600)"]
      resources: {{requests: {{cpu: 5m, memory: 32Mi}}, limits: {{memory: 64Mi}}}}
      securityContext:
        allowPrivilegeEscalation: false
        capabilities: {{drop: [ALL]}}
"""


@pytest.fixture(scope="module")
def probe(clusters: Clusters) -> Iterator[str]:
    ns = clusters.namespace
    sts = clusters.json("hub", "-n", ns, "get", "statefulset", f"{NODE}-agent")
    image = sts["spec"]["template"]["spec"]["containers"][0]["image"]
    clusters.run("hub", "-n", ns, "apply", "-f", "-", input=_probe_pod(image))
    clusters.run("hub", "-n", ns, "wait", "--for=condition=Ready", f"pod/{PROBE}", "--timeout=120s")
    try:
        yield ns
    finally:
        clusters.run("hub", "-n", ns, "delete", "pod", PROBE, "--wait=false", check=False)


def _connect(clusters: Clusters, ns: str, ip: str, port: int) -> str:
    out = clusters.run(
        "hub", "-n", ns, "exec", PROBE, "--", "python3", "-c", CONNECT, ip, str(port)
    )
    return out.stdout.strip()


def _refused(answer: str) -> bool:
    # kube-router rejects (ICMP port unreachable: "refused"); other enforcers drop (timeout).
    return answer in {"TimeoutError", "ConnectionRefusedError"}


def _pod_ip(clusters: Clusters, ns: str, selector: str) -> str:
    pods = clusters.pods("hub", ns, selector)
    assert pods, f"no Pod matches {selector} in {ns}"
    return str(pods[0]["status"]["podIP"])


def test_only_declared_callers_reach_the_agents_api(clusters: Clusters, probe: str) -> None:
    ns = probe
    policy = clusters.json("hub", "-n", ns, "get", "networkpolicy", f"{NODE}-agent")
    assert policy["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "trustspace-operator"
    agent = _pod_ip(clusters, ns, f"trustspace.io/node={NODE}")
    collector = _pod_ip(clusters, ns, "app.kubernetes.io/component=collector")
    operator = _pod_ip(clusters, SYSTEM_NS, "app.kubernetes.io/component=operator")

    assert _refused(_connect(clusters, ns, agent, API_PORT))
    assert _connect(clusters, ns, agent, GATEWAY_PORT) == "open"
    assert _connect(clusters, ns, collector, COLLECTOR_PORT) == "open"
    assert _connect(clusters, ns, operator, METRICS_PORT) == "open"


def test_without_the_policy_the_same_probe_gets_through(clusters: Clusters, probe: str) -> None:
    """The control: the refusal above is the policy's. The operator is stopped so it does
    not repair the policy mid-test, then started again and must restore it."""
    ns = probe
    agent = _pod_ip(clusters, ns, f"trustspace.io/node={NODE}")
    deploy = f"deploy/{RELEASE}-operator"
    clusters.run("hub", "-n", SYSTEM_NS, "scale", deploy, "--replicas=0")
    try:
        wait_for(
            "the operator Pods to stop",
            lambda: not clusters.pods("hub", SYSTEM_NS, "app.kubernetes.io/component=operator"),
            timeout=120,
            every=2,
        )
        clusters.run("hub", "-n", ns, "delete", "networkpolicy", f"{NODE}-agent")
        wait_for(
            "the API port to open without the policy",
            lambda: _connect(clusters, ns, agent, API_PORT) == "open",
            timeout=60,
            every=2,
        )
    finally:
        clusters.run("hub", "-n", SYSTEM_NS, "scale", deploy, "--replicas=2")
    clusters.run("hub", "-n", SYSTEM_NS, "rollout", "status", deploy, "--timeout=180s")
    wait_for(
        "the operator to restore the agent's NetworkPolicy",
        lambda: (
            clusters.run(
                "hub", "-n", ns, "get", "networkpolicy", f"{NODE}-agent", check=False
            ).returncode
            == 0
        ),
        timeout=180,
        every=2,
    )
    wait_for(
        "the API port to be refused again",
        lambda: _refused(_connect(clusters, ns, agent, API_PORT)),
        timeout=60,
        every=2,
    )

    def all_ready() -> bool:
        nodes = clusters.json("hub", "-n", ns, "get", "dsn")["items"]
        conds = [{c["type"]: c["status"] for c in n["status"]["conditions"]} for n in nodes]
        return all(c.get("Ready") == "True" and c.get("PolicySynced") == "True" for c in conds)

    wait_for("every node Ready under the restarted operator", all_ready, timeout=240, every=5)
