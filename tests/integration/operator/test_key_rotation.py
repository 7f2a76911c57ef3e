"""SM2 key lifecycle: manual rotation (annotation and CLI), scheduled rotation, grace expiry."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import sys
from typing import Any

from support.operator import OperatorRunner, apply, events_for, node_manifest, wait_for
from trustspace.crypto import SM2PrivateKey
from trustspace.kube import Kube
from trustspace.kube import kinds as k
from trustspace.localk8s import LocalCluster

SECRET = "vn-hanoi-sm2-key"


def _status(kube: Kube, ns: str) -> dict[str, Any]:
    return dict((kube.get(k.DATASPACENODE, "vn-hanoi", ns) or {}).get("status") or {})


def _active(kube: Kube, ns: str) -> str | None:
    return (_status(kube, ns).get("activeKey") or {}).get("keyId")


def _secret_key_id(kube: Kube, ns: str) -> str:
    secret = kube.get(k.SECRET, SECRET, ns)
    assert secret is not None
    return SM2PrivateKey.from_pem(base64.b64decode(secret["data"]["key.pem"])).public_key().key_id


def _start(
    cluster: LocalCluster, kube: Kube, ns: str, operator: OperatorRunner, **spec: Any
) -> str:
    operator.start()
    apply(cluster, node_manifest("vn-hanoi", ns, **spec))
    return wait_for("first key", lambda: _active(kube, ns))


def test_cli_rotation_keeps_the_old_key_for_the_grace_period(
    cluster: LocalCluster, kube: Kube, namespace: str, operator: OperatorRunner
) -> None:
    first = _start(cluster, kube, namespace, operator, keyRotation={"gracePeriod": "24h"})
    env = dict(os.environ, KUBECONFIG=str(cluster.kubeconfig))
    done = subprocess.run(
        [sys.executable, "-m", "trustspace.cli", "keys", "rotate", "vn-hanoi", "-n", namespace],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    second = done.stdout.strip()
    assert second and second != first
    status = wait_for(
        "status follows the Secret",
        lambda: _status(kube, namespace) if _active(kube, namespace) == second else None,
    )
    assert _secret_key_id(kube, namespace) == second
    previous = status["previousKeys"]
    assert [p["keyId"] for p in previous] == [first]
    retire = dt.datetime.fromisoformat(previous[0]["retireAt"].replace("Z", "+00:00"))
    rotated = dt.datetime.fromisoformat(status["activeKey"]["rotatedAt"].replace("Z", "+00:00"))
    assert retire - rotated == dt.timedelta(hours=24)
    assert "nextKey" not in status
    node = kube.get(k.DATASPACENODE, "vn-hanoi", namespace)
    assert "trustspace.io/rotate-key" not in (node["metadata"].get("annotations") or {})  # type: ignore[index]
    rotated_events = [
        e for e in events_for(cluster, namespace, "vn-hanoi") if e["reason"] == "KeyRotated"
    ]
    assert len(rotated_events) == 1 and first[:16] in rotated_events[0]["message"]


def _backdate(kube: Kube, ns: str, annotation: str, value: str) -> None:
    kube.patch(k.SECRET, SECRET, {"metadata": {"annotations": {annotation: value}}}, ns)


def test_scheduled_rotation_when_the_key_is_old_enough(
    cluster: LocalCluster, kube: Kube, namespace: str, operator: OperatorRunner
) -> None:
    first = _start(
        cluster, kube, namespace, operator, keyRotation={"rotateEvery": "720h", "gracePeriod": "1h"}
    )
    status = _status(kube, namespace)
    assert status["activeKey"]["nextRotationAt"]
    # Thirty-one days pass (in the Secret's record of when the key started signing).
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=31)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _backdate(kube, namespace, "trustspace.io/not-before", old)
    second = wait_for("scheduled rotation", lambda: (a := _active(kube, namespace)) != first and a)
    assert _secret_key_id(kube, namespace) == second
    events = [e for e in events_for(cluster, namespace, "vn-hanoi") if e["reason"] == "KeyRotated"]
    assert "scheduled every 720h" in events[0]["message"]


def test_manual_policy_never_rotates_by_age(
    cluster: LocalCluster, kube: Kube, namespace: str, operator: OperatorRunner
) -> None:
    first = _start(cluster, kube, namespace, operator, keyRotation={"policy": "Manual"})
    assert "nextRotationAt" not in _status(kube, namespace)["activeKey"]
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3650)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _backdate(kube, namespace, "trustspace.io/not-before", old)
    kube.patch(k.DATASPACENODE, "vn-hanoi", {"metadata": {"labels": {"poke": "1"}}}, namespace)
    # The annotation is the only way: it rotates exactly once per request.
    kube.patch(
        k.DATASPACENODE,
        "vn-hanoi",
        {"metadata": {"annotations": {"trustspace.io/rotate-key": "r1"}}},
        namespace,
    )
    second = wait_for("requested rotation", lambda: (a := _active(kube, namespace)) != first and a)
    secret = kube.get(k.SECRET, SECRET, namespace)
    assert secret["metadata"]["annotations"]["trustspace.io/key-revision"] == "2"  # type: ignore[index]
    assert _active(kube, namespace) == second


def test_retired_keys_leave_after_the_grace_period(
    cluster: LocalCluster, kube: Kube, namespace: str, operator: OperatorRunner
) -> None:
    first = _start(cluster, kube, namespace, operator)
    kube.patch(
        k.DATASPACENODE,
        "vn-hanoi",
        {"metadata": {"annotations": {"trustspace.io/rotate-key": "now"}}},
        namespace,
    )
    wait_for(
        "rotation",
        lambda: [p["keyId"] for p in _status(kube, namespace).get("previousKeys", [])] == [first],
    )
    secret = kube.get(k.SECRET, SECRET, namespace)
    previous = json.loads(secret["metadata"]["annotations"]["trustspace.io/previous-keys"])  # type: ignore[index]
    previous[0]["retireAt"] = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    _backdate(kube, namespace, "trustspace.io/previous-keys", json.dumps(previous))
    wait_for("retired", lambda: _status(kube, namespace).get("previousKeys") == [] or None)
    reasons = [e["reason"] for e in events_for(cluster, namespace, "vn-hanoi")]
    assert "KeyRetired" in reasons
