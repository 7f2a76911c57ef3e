"""The operator provisions a local mirror node, repairs drift and rolls out spec changes."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from support.operator import (
    OperatorRunner,
    apply,
    condition,
    events_for,
    node_manifest,
    wait_empty,
    wait_for,
)
from trustspace.crypto import SM2PrivateKey
from trustspace.kube import Kube
from trustspace.kube import kinds as k
from trustspace.localk8s import LocalCluster

OWNED = [
    (k.SERVICE_ACCOUNT, "vn-hanoi-agent"),
    (k.ROLE, "vn-hanoi-agent"),
    (k.ROLE_BINDING, "vn-hanoi-agent"),
    (k.CONFIG_MAP, "vn-hanoi-agent-config"),
    (k.STATEFUL_SET, "vn-hanoi-agent"),
    (k.SERVICE, "vn-hanoi-gateway"),
    (k.SECRET, "vn-hanoi-sm2-key"),
]


def _node(kube: Kube, ns: str) -> dict[str, Any] | None:
    return kube.get(k.DATASPACENODE, "vn-hanoi", ns)


def _keyed(kube: Kube, ns: str) -> dict[str, Any] | None:
    body = _node(kube, ns)
    ready = condition(body, "KeyReady")
    return body if ready and ready["status"] == "True" else None


def test_provisions_objects_keys_and_truthful_status(
    cluster: LocalCluster, kube: Kube, namespace: str, operator: OperatorRunner
) -> None:
    operator.start()
    apply(cluster, node_manifest("vn-hanoi", namespace))
    body = wait_for("KeyReady", lambda: _keyed(kube, namespace))
    uid = body["metadata"]["uid"]

    for kind, name in OWNED:
        obj = kube.get(kind, name, namespace)
        assert obj is not None, f"{kind.kind} {name} missing"
        labels = obj["metadata"]["labels"]
        assert labels["trustspace.io/node"] == "vn-hanoi"
        assert labels["app.kubernetes.io/managed-by"] == "trustspace-operator"
        owners = obj["metadata"].get("ownerReferences", [])
        assert [o["uid"] for o in owners] == [uid], f"{kind.kind} {name} not owned by the node"

    secret = kube.get(k.SECRET, "vn-hanoi-sm2-key", namespace)
    assert secret is not None
    private = SM2PrivateKey.from_pem(base64.b64decode(secret["data"]["key.pem"]))
    status = body["status"]
    assert status["activeKey"]["keyId"] == private.public_key().key_id
    assert status["activeKey"]["fingerprint"] == private.public_key().key_id
    assert status["observedGeneration"] == body["metadata"]["generation"]
    assert "PRIVATE" not in str(status)
    # No kubelet runs Pods here, so the agent is truthfully not ready, and neither is the node.
    agent = condition(body, "AgentReady")
    assert agent is not None and agent["status"] == "False"
    assert "0/1 agent replicas ready" in agent["message"]
    assert condition(body, "Ready")["status"] == "False"  # type: ignore[index]
    assert status["phase"] == "Provisioning"

    # A new node's story is one Event: its objects and its first key.
    provisioned = [
        e for e in events_for(cluster, namespace, "vn-hanoi") if e["reason"] == "Provisioned"
    ]
    assert len(provisioned) == 1
    assert "object(s) in this cluster" in provisioned[0]["message"]
    assert f"issued SM2 key {status['activeKey']['keyId'][:16]}" in provisioned[0]["message"]
    for event in events_for(cluster, namespace, "vn-hanoi"):
        assert "PRIVATE KEY" not in event["message"]
    assert "PRIVATE KEY" not in operator.logs()


def test_repairs_deleted_and_edited_objects(
    cluster: LocalCluster, kube: Kube, namespace: str, operator: OperatorRunner
) -> None:
    operator.start()
    apply(cluster, node_manifest("vn-hanoi", namespace))
    wait_for("KeyReady", lambda: _keyed(kube, namespace))

    kube.delete(k.SERVICE, "vn-hanoi-gateway", namespace)
    wait_for("Service recreated", lambda: kube.get(k.SERVICE, "vn-hanoi-gateway", namespace))

    kube.patch(
        k.CONFIG_MAP,
        "vn-hanoi-agent-config",
        {"data": {"agent.yaml": "tampered: true\n"}},
        namespace,
    )
    wait_for(
        "ConfigMap restored",
        lambda: (
            "tampered"
            not in (kube.get(k.CONFIG_MAP, "vn-hanoi-agent-config", namespace) or {})
            .get("data", {})
            .get("agent.yaml", "tampered")
        ),
    )
    kube.patch(
        k.ROLE,
        "vn-hanoi-agent",
        {"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
        namespace,
    )
    wait_for(
        "Role narrowed again",
        lambda: all(
            r["apiGroups"] == [""]
            for r in (kube.get(k.ROLE, "vn-hanoi-agent", namespace) or {}).get(
                "rules", [{"apiGroups": ["*"]}]
            )
        ),
    )
    repaired = [
        e for e in events_for(cluster, namespace, "vn-hanoi") if e["reason"] == "DriftRepaired"
    ]
    assert repaired, "no DriftRepaired event"
    messages = " ".join(e["message"] for e in repaired)
    assert "Service" in messages and "ConfigMap" in messages


def test_spec_change_rolls_out(
    cluster: LocalCluster, kube: Kube, namespace: str, operator: OperatorRunner
) -> None:
    operator.start()
    apply(cluster, node_manifest("vn-hanoi", namespace))
    first = wait_for("KeyReady", lambda: _keyed(kube, namespace))
    apply(
        cluster,
        node_manifest("vn-hanoi", namespace, agent={"replicas": 3, "heartbeatInterval": "10s"}),
    )

    def rolled() -> dict[str, Any] | None:
        sts = kube.get(k.STATEFUL_SET, "vn-hanoi-agent", namespace) or {}
        body = _node(kube, namespace) or {}
        done = (
            sts.get("spec", {}).get("replicas") == 3
            and (body.get("status") or {}).get("observedGeneration")
            == body["metadata"]["generation"]
        )
        return body if done else None

    body = wait_for("replicas rolled out", rolled)
    assert body["metadata"]["generation"] > first["metadata"]["generation"]
    config = kube.get(k.CONFIG_MAP, "vn-hanoi-agent-config", namespace)
    assert "heartbeatSeconds: 10.0" in config["data"]["agent.yaml"]  # type: ignore[index]
    # A spec change is not drift: it is reported as an update.
    reasons = [e["reason"] for e in events_for(cluster, namespace, "vn-hanoi")]
    assert "Updated" in reasons and "DriftRepaired" not in reasons


def test_deleting_the_node_removes_its_objects(
    cluster: LocalCluster, kube: Kube, namespace: str, operator: OperatorRunner
) -> None:
    operator.start()
    apply(cluster, node_manifest("vn-hanoi", namespace))
    body = wait_for("KeyReady", lambda: _keyed(kube, namespace))
    # Owner references cover a local node's objects: the garbage collector removes them,
    # with no finalizer (and no patch of every new node to add one).
    assert not body["metadata"].get("finalizers")
    cluster.kubectl("delete", "dsn", "vn-hanoi", "-n", namespace, "--timeout=30s")
    wait_empty(
        "owned objects gone",
        lambda: [f"{kd.kind}/{n}" for kd, n in OWNED if kube.get(kd, n, namespace)],
    )


def test_heartbeat_written_by_the_collector_turns_agent_ready_at_the_next_tick(
    cluster: LocalCluster, kube: Kube, namespace: str, operator: OperatorRunner
) -> None:
    # Agents as processes (the quickstart's runtime): AgentReady comes from heartbeats alone.
    # A resync far away: the periodic tick must notice the heartbeat by itself, reading the
    # node the collector just wrote rather than the version the operator wrote last.
    operator.start(env={"TRUSTSPACE_AGENT_RUNTIME": "external", "TRUSTSPACE_RESYNC": "600"})
    apply(cluster, node_manifest("vn-hanoi", namespace))
    body = wait_for("KeyReady", lambda: _keyed(kube, namespace))
    agent = condition(body, "AgentReady")
    assert agent is not None and agent["status"] == "False"

    beat = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    kube.patch_status(k.DATASPACENODE, "vn-hanoi", namespace, {"lastHeartbeatTime": beat})

    def agent_ready() -> dict[str, Any] | None:
        found = condition(_node(kube, namespace), "AgentReady")
        return found if found and found["status"] == "True" else None

    ready = wait_for("AgentReady from the heartbeat", agent_ready, timeout=15)
    assert ready["reason"] == "AgentAvailable"
    assert "heartbeats arrive every" in ready["message"]
