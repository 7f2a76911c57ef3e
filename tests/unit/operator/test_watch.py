"""Which owned-object watch events make the operator look at a node again."""

from __future__ import annotations

from typing import Any

from trustspace.kube import FIELD_MANAGER, Kube
from trustspace.kube import kinds as k
from trustspace_operator import render
from trustspace_operator.watch import OwnedWatcher


def _obj(manager: str, *, status: dict[str, Any] | None = None, node: bool = True) -> Any:
    labels = {render.NODE_LABEL: "vn-hanoi", render.NODE_NAMESPACE_LABEL: "ds"} if node else {}
    return {
        "metadata": {
            "name": "vn-hanoi-agent",
            "namespace": "ds",
            "labels": labels,
            "managedFields": [
                {"manager": "someone-earlier", "time": "2026-01-01T00:00:00Z"},
                {"manager": manager, "time": "2026-01-01T00:00:05Z"},
            ],
        },
        "status": status or {},
    }


def _watcher() -> tuple[OwnedWatcher, list[tuple[str, str, str]]]:
    seen: list[tuple[str, str, str]] = []
    kube: Kube = None  # type: ignore[assignment]  # handle() does no I/O
    return OwnedWatcher(kube, ["ds"], lambda ns, n, c: seen.append((ns, n, c))), seen


def test_our_own_writes_coming_back_are_ignored() -> None:
    watcher, seen = _watcher()
    watcher.handle(k.CONFIG_MAP, "MODIFIED", _obj(FIELD_MANAGER))
    watcher.handle(k.STATEFUL_SET, "MODIFIED", _obj(FIELD_MANAGER))
    assert seen == []


def test_a_change_or_deletion_by_someone_else_enqueues_the_owner() -> None:
    watcher, seen = _watcher()
    watcher.handle(k.CONFIG_MAP, "MODIFIED", _obj("kubectl-edit"))
    watcher.handle(k.SERVICE, "DELETED", _obj(FIELD_MANAGER))
    assert seen == [("ds", "vn-hanoi", "drift"), ("ds", "vn-hanoi", "drift")]


def test_workload_readiness_moving_enqueues_once_per_change() -> None:
    watcher, seen = _watcher()
    ready = {"replicas": 1, "readyReplicas": 1}
    watcher.handle(k.STATEFUL_SET, "MODIFIED", _obj("kube-controller-manager", status=ready))
    # The same readiness again, written by us (an apply): nothing new to see.
    watcher.handle(k.STATEFUL_SET, "MODIFIED", _obj(FIELD_MANAGER, status=ready))
    watcher.handle(k.STATEFUL_SET, "MODIFIED", _obj(FIELD_MANAGER, status={"replicas": 1}))
    assert seen == [("ds", "vn-hanoi", "workload"), ("ds", "vn-hanoi", "workload")]


def test_objects_without_an_owning_node_are_ignored() -> None:
    watcher, seen = _watcher()
    watcher.handle(k.CONFIG_MAP, "DELETED", _obj("kubectl", node=False))
    assert seen == []
