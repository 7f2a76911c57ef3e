"""SIGKILL the operator at every step of key issue and rotation: it converges, loses nothing.

The operator kills itself (SIGKILL, no clean-up) when it reaches the named fault point; a
fresh operator then takes over. Each time: exactly one active key, status equal to the
Secret, the previous key kept (never lost, never rotated twice).
"""

from __future__ import annotations

import base64
import json
import signal
from pathlib import Path
from typing import Any

import pytest

from support.operator import OperatorRunner, apply, node_manifest, wait_for
from trustspace.crypto import SM2PrivateKey
from trustspace.kube import Kube
from trustspace.kube import kinds as k
from trustspace.localk8s import LocalCluster

SECRET = "vn-hanoi-sm2-key"


def _node(kube: Kube, ns: str) -> dict[str, Any]:
    return kube.get(k.DATASPACENODE, "vn-hanoi", ns) or {}


def _converged(kube: Kube, ns: str, revision: str) -> dict[str, Any] | None:
    secret = kube.get(k.SECRET, SECRET, ns)
    node = _node(kube, ns)
    if secret is None or not node:
        return None
    ann = secret["metadata"]["annotations"]
    status = node.get("status") or {}
    if ann.get("trustspace.io/key-revision") != revision or "next.pem" in secret["data"]:
        return None
    if (status.get("activeKey") or {}).get("keyId") != ann["trustspace.io/key-id"]:
        return None
    if "trustspace.io/rotate-key" in (node["metadata"].get("annotations") or {}):
        return None
    return {"secret": secret, "status": status}


def _crash_at(operator: OperatorRunner, point: str, marker: Path) -> None:
    code = operator.wait_exit(timeout=60)
    assert code == -signal.SIGKILL, f"operator exited {code} instead of dying at {point}"
    assert marker.read_text().split() == [point]


def _check_single_active_key(state: dict[str, Any]) -> str:
    secret = state["secret"]
    active = SM2PrivateKey.from_pem(base64.b64decode(secret["data"]["key.pem"]))
    key_id = active.public_key().key_id
    assert secret["metadata"]["annotations"]["trustspace.io/key-id"] == key_id
    assert state["status"]["activeKey"]["keyId"] == key_id
    assert "nextKey" not in state["status"]
    return key_id


@pytest.mark.parametrize("point", ["before-issue", "after-issue", "after-status"])
def test_kill_while_issuing_the_first_key(
    cluster: LocalCluster,
    kube: Kube,
    namespace: str,
    operator: OperatorRunner,
    tmp_path: Path,
    point: str,
) -> None:
    marker = tmp_path / "fault"
    operator.start(env={"TRUSTSPACE_FAULT_POINTS": point, "TRUSTSPACE_FAULT_MARKER": str(marker)})
    apply(cluster, node_manifest("vn-hanoi", namespace))
    _crash_at(operator, point, marker)
    operator.start()
    state = wait_for("convergence", lambda: _converged(kube, namespace, "1"))
    _check_single_active_key(state)


@pytest.mark.parametrize(
    "point",
    ["before-stage", "after-stage", "before-promote", "after-promote", "before-annotation-clear"],
)
def test_kill_while_rotating(
    cluster: LocalCluster,
    kube: Kube,
    namespace: str,
    operator: OperatorRunner,
    tmp_path: Path,
    point: str,
) -> None:
    operator.start()
    apply(cluster, node_manifest("vn-hanoi", namespace))
    first = wait_for("first key", lambda: _converged(kube, namespace, "1"))
    first_id = _check_single_active_key(first)
    operator.stop()

    marker = tmp_path / "fault"
    operator.start(env={"TRUSTSPACE_FAULT_POINTS": point, "TRUSTSPACE_FAULT_MARKER": str(marker)})
    kube.patch(
        k.DATASPACENODE,
        "vn-hanoi",
        {"metadata": {"annotations": {"trustspace.io/rotate-key": "crash"}}},
        namespace,
    )
    _crash_at(operator, point, marker)
    staged_pem = (kube.get(k.SECRET, SECRET, namespace) or {}).get("data", {}).get("next.pem")
    staged_id = (
        SM2PrivateKey.from_pem(base64.b64decode(staged_pem)).public_key().key_id
        if staged_pem
        else None
    )

    operator.start()
    state = wait_for("convergence after restart", lambda: _converged(kube, namespace, "2"))
    second_id = _check_single_active_key(state)
    assert second_id != first_id
    previous = json.loads(state["secret"]["metadata"]["annotations"]["trustspace.io/previous-keys"])
    assert [p["keyId"] for p in previous] == [first_id], "the replaced key must stay verifiable"
    assert [p["keyId"] for p in state["status"]["previousKeys"]] == [first_id]
    if staged_id is not None:
        # The key staged before the crash is the one that became active: never regenerated.
        assert second_id == staged_id
