"""What only a kubelet can do to the data space: kill Pods, drain a node; and what must hold.

- an agent Pod force-deleted during a stream of audit events: every event it acknowledged
  reaches the hub's collector;
- the leading operator Pod force-deleted mid-rotation: the node ends with exactly one active key
  and streams under it;
- a node drained of its agents: they come back on their volumes, Ready, audit intact;
- a circuit breaker tripped by a burst of denied transfers, seen at the hub, reset by hand.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from support.dataspace import PortForward
from support.kind import AGENTS, RELEASE, SYSTEM_NS, Clusters
from support.operator import wait_for
from trustspace.api.constants import ROTATE_KEY_ANNOTATION

COLLECTOR_DB = "/var/lib/trustspace-collector/audit.db"


def _post(url: str, body: dict[str, Any], timeout: float = 10) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(  # noqa: S310 - http to a port-forward this test opened
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _forward(clusters: Clusters, node: str) -> PortForward:
    cluster, ns, pod = clusters.agent_pod(node)
    return PortForward(clusters.kubectl, clusters.configs[cluster], ns, f"pod/{pod}")


def _wait_agent_ready(clusters: Clusters, node: str, timeout: float = 240) -> None:
    cluster, ns, pod = clusters.agent_pod(node)

    def ready() -> bool:
        out = clusters.run(cluster, "-n", ns, "get", "pod", pod, "-o", "json", check=False)
        if out.returncode:
            return False
        status = json.loads(out.stdout).get("status") or {}
        return any(
            c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])
        )

    wait_for(f"{pod} Ready", ready, timeout=timeout, every=2)


def _hub_events(clusters: Clusters, node: str, action: str) -> list[dict[str, Any]]:
    out = clusters.run(
        "hub", "-n", clusters.namespace, "exec", f"deploy/{RELEASE}-collector", "--",
        "trustspace", "audit", "query", "--db", COLLECTOR_DB, "--node", node, "--action", action,
    )  # fmt: skip
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def test_agent_pod_killed_during_an_event_stream_loses_nothing(clusters: Clusters) -> None:
    node, action = "vn-hanoi", "test.kind.stream"
    run = uuid.uuid4().hex[:8]
    cluster, ns, pod = clusters.agent_pod(node)
    acked: set[str] = set()
    forward = _forward(clusters, node)
    batches, per_batch, killed_at = 40, 50, 12
    try:
        batch = 0
        while batch < batches:
            ids = [f"{run}-{batch}-{i}" for i in range(per_batch)]
            events = [
                {"actor": "kind-e2e", "action": action, "subject": f"stream/{run}", "detail": d}
                for d in ids
            ]
            try:
                status, _ = _post(
                    f"http://127.0.0.1:{forward.port}/v1/audit/events", {"events": events}
                )
            except OSError:
                status = 0
            if status == 201:
                acked.update(ids)
                batch += 1
            else:  # the Pod is gone: wait for its successor, then send the batch again
                forward.stop()
                _wait_agent_ready(clusters, node)
                forward = _forward(clusters, node)
                continue
            if batch == killed_at:
                clusters.run(cluster, "-n", ns, "delete", "pod", pod, "--force", "--grace-period=0")
    finally:
        forward.stop()
    assert len(acked) == batches * per_batch

    def all_at_hub() -> bool:
        seen = {e.get("detail") for e in _hub_events(clusters, node, action)}
        missing = acked - seen
        return not missing

    wait_for("every acknowledged event at the hub", all_at_hub, timeout=240, every=5)
    # The chain the hub holds is one history: strictly increasing sequence numbers.
    seqs = [e["seq"] for e in _hub_events(clusters, node, action)]
    assert seqs == sorted(set(seqs))


def _leader(clusters: Clusters) -> str | None:
    """The operator Pod that holds the Lease, if a live one does."""
    lease = clusters.json("hub", "-n", SYSTEM_NS, "get", "lease", "trustspace-operator")
    holder = lease["spec"]["holderIdentity"]
    pods = clusters.pods("hub", SYSTEM_NS, "app.kubernetes.io/component=operator")
    live = [p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")]
    return next((name for name in live if holder.startswith(name + "-")), None)


def test_operator_killed_mid_rotation_leaves_exactly_one_active_key(clusters: Clusters) -> None:
    node = "th-rayong"
    cluster, ns = AGENTS[node]
    before = clusters.dsn(node)["status"]["activeKey"]["keyId"]
    leader = _leader(clusters)
    assert leader, "no live operator Pod holds the Lease"
    clusters.run(
        "hub", "-n", clusters.namespace, "annotate", "dsn", node, "--overwrite",
        f"{ROTATE_KEY_ANNOTATION}={int(time.time())}",
    )  # fmt: skip
    clusters.run("hub", "-n", SYSTEM_NS, "delete", "pod", leader, "--force", "--grace-period=0")
    new = wait_for(
        "the standby to take the Lease",
        lambda: (n := _leader(clusters)) and n != leader and n,
        timeout=120,
        every=2,
    )

    def rotated() -> Any:
        status = clusters.dsn(node).get("status") or {}
        conds = {c["type"]: c["status"] for c in status.get("conditions", [])}
        active = (status.get("activeKey") or {}).get("keyId")
        done = active and active != before and not status.get("nextKey")
        return done and conds.get("Ready") == "True" and status

    status = wait_for("the rotation to finish under the new leader", rotated, timeout=300, every=3)
    assert _leader(clusters) == new
    # One active key: the status names one, the node's key Secret holds one (no staged key
    # left behind), and the trust bundle every agent reads lists it as the node's only key.
    secret = clusters.json(cluster, "-n", ns, "get", "secret", f"{node}-sm2-key")
    assert set(secret["data"]) == {"key.pem", "pub.pem"}, sorted(secret["data"])
    bundle_cm = clusters.json(
        "hub", "-n", clusters.namespace, "get", "configmap", "trustspace-trust-bundle"
    )
    bundle = json.loads(bundle_cm["data"]["bundle.json"])
    entry = json.dumps(bundle)
    assert status["activeKey"]["keyId"] in entry


def _send(clusters: Clusters, node: str, action: str, details: list[str]) -> None:
    forward = _forward(clusters, node)
    try:
        events = [
            {"actor": "kind-e2e", "action": action, "subject": "drain", "detail": d}
            for d in details
        ]
        status, answer = _post(
            f"http://127.0.0.1:{forward.port}/v1/audit/events", {"events": events}
        )
        assert status == 201, answer
    finally:
        forward.stop()


def test_a_drained_node_gets_its_agents_back_with_their_audit(clusters: Clusters) -> None:
    cluster, action, run = "edge-2", "test.kind.drain", uuid.uuid4().hex[:8]
    nodes = [n for n, (c, _) in AGENTS.items() if c == cluster]
    for node in nodes:
        _send(clusters, node, action, [f"{run}-before-{i}" for i in range(20)])
    (kube_node,) = [n["metadata"]["name"] for n in clusters.json(cluster, "get", "nodes")["items"]]
    clusters.run(cluster, "cordon", kube_node)
    try:
        clusters.run(
            cluster, "drain", kube_node, "--pod-selector=app.kubernetes.io/name=trustspace-agent",
            "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=180s",
            timeout=240,
        )  # fmt: skip
        for node in nodes:
            _, ns, _ = clusters.agent_pod(node)
            pods = clusters.pods(cluster, ns, f"trustspace.io/node={node}")
            # Evicted, and nowhere to go while the only node is cordoned.
            assert all(p["status"].get("phase") != "Running" for p in pods), pods
    finally:
        clusters.run(cluster, "uncordon", kube_node)
    for node in nodes:
        _wait_agent_ready(clusters, node)

        def back(node: str = node) -> bool:
            conds = clusters.conditions(node)
            return all(conds.get(t, {}).get("status") == "True" for t in ("Ready", "AgentReady"))

        wait_for(f"{node} Ready again at the hub", back, timeout=240, every=5)
        _send(clusters, node, action, [f"{run}-after-{i}" for i in range(20)])
    # The audit buffer survived on its volume: one chain across the drain, nothing lost.
    for node in nodes:

        def arrived(node: str = node) -> list[dict[str, Any]] | None:
            events = [e for e in _hub_events(clusters, node, action) if e["detail"].startswith(run)]
            return events if len(events) == 40 else None

        events = wait_for(f"{node}'s 40 events at the hub", arrived, timeout=180, every=5)
        seqs = [e["seq"] for e in events]
        assert seqs == sorted(set(seqs))
        assert [e["detail"] for e in events][:20] == [f"{run}-before-{i}" for i in range(20)]


def test_a_breaker_trips_on_denied_transfers_and_is_reset_by_hand(clusters: Clusters) -> None:
    link = "sg-singapore-to-cn-nanning"
    forward = _forward(clusters, "sg-singapore")
    try:
        url = f"http://127.0.0.1:{forward.port}"
        personal = {"customer": {"name": "Tan", "phone": "+6591234567"}}
        codes = []
        for i in range(20):  # DeniedBurst: 20 in 1m by default
            status, answer = _post(
                f"{url}/v1/transfers",
                {
                    "metadata": {
                        "source": "sg-singapore",
                        "destination": "cn-nanning",
                        "classification": "internal",
                        "categories": ["personal"],
                        "purpose": f"kind e2e breaker {i}",
                    },
                    "records": [personal],
                },
            )
            codes.append((status, answer.get("code")))
        assert codes[0] == (403, "denied"), codes

        def tripped_at_hub() -> bool:
            ml = clusters.json("hub", "-n", clusters.namespace, "get", "mirrorlink", link)
            conds = {c["type"]: c for c in (ml.get("status") or {}).get("conditions", [])}
            return conds.get("CircuitBreakerTripped", {}).get("status") == "True"

        wait_for("the hub to show the tripped breaker", tripped_at_hub, timeout=120, every=2)
        status, answer = _post(f"{url}/v1/links/{link}/reset?kind=link", {})
        assert status == 200, answer
        assert answer["circuitBreaker"]["state"] == "Closed"
        wait_for(
            "the hub to show the breaker closed", lambda: not tripped_at_hub(), timeout=120, every=2
        )
    finally:
        forward.stop()
