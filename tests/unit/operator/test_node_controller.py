"""The node controller's bookkeeping without a control plane: what watch events and the
sweep queue, what it remembers per node, and the `nodes` probe."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any, cast

import pytest

from trustspace.kube import Kube, Obj
from trustspace_operator import handlers, nodes
from trustspace_operator.config import OperatorConfig
from trustspace_operator.nodes import NodeController, schedule
from trustspace_operator.nodes.memory import Backoff, NodeMemory

CONFIG = OperatorConfig(tick=1.0, resync=120.0, publish_wait=30.0, workers=1)


def _node(name: str, phase: str = "Ready", generation: int = 1, **meta: Any) -> Obj:
    return {
        "metadata": {"namespace": "space", "name": name, "generation": generation, **meta},
        "spec": {"role": "edge", "jurisdiction": "VN", "endpoint": "https://gw.example:8443"},
        "status": {"phase": phase, "observedGeneration": generation},
    }


@pytest.fixture
def ctl(monkeypatch: pytest.MonkeyPatch) -> NodeController:
    controller = NodeController(cast(Kube, SimpleNamespace()), CONFIG)
    queued: list[tuple[str, str, str]] = []
    monkeypatch.setattr(
        controller, "enqueue", lambda ns, name, cause, body=None: queued.append((ns, name, cause))
    )
    controller.queued = queued  # type: ignore[attr-defined]
    return controller


def test_the_nodes_probe_counts_nodes_not_phases(ctl: NodeController) -> None:
    for name in ("a", "b", "c"):
        ctl.observe(_node(name))  # all three Ready: one phase, three nodes
    ctl.observe(_node("d", phase="Degraded"))
    memo = SimpleNamespace(operator=SimpleNamespace(nodes=ctl))
    assert handlers.probe(memo=memo) == 4
    assert ctl.phase_counts() == {"Ready": 3, "Degraded": 1}
    ctl.forget("space", "d")
    assert handlers.probe(memo=memo) == 3


def test_observe_drops_managed_fields_and_one_record_holds_the_node(ctl: NodeController) -> None:
    kept = ctl.observe(_node("a", managedFields=[{"manager": "kopf"}], resourceVersion="7"))
    assert "managedFields" not in kept["metadata"]
    memory = ctl.memories.get(("space", "a"))
    assert memory is not None and memory.body is kept
    ctl.forget("space", "a")
    assert ctl.memories.get(("space", "a")) is None
    assert ctl.watched() == []


def test_a_first_event_queues_create_or_resume_then_only_news(ctl: NodeController) -> None:
    ctl.node_changed(_node("a"))
    fresh = _node("b")
    del fresh["status"]["observedGeneration"]
    ctl.node_changed(fresh)
    assert ctl.queued == [("space", "a", "resume"), ("space", "b", "create")]  # type: ignore[attr-defined]
    ctl.memories(("space", "a")).last_full = time.monotonic()
    ctl.memories(("space", "a")).observed = 1
    assert ctl.wants(_node("a")) is None  # our own status write coming back
    changed = _node("a", generation=2)
    changed["status"]["observedGeneration"] = 1
    assert ctl.wants(changed) == "update"
    rotate = _node("a", annotations={"trustspace.io/rotate-key": "now"})
    assert ctl.wants(rotate) == "update"
    ctl.memories(("space", "a")).taken_request = "now"
    assert ctl.wants(rotate) is None


def test_the_sweep_queues_what_is_due_and_is_the_only_periodic_entry(ctl: NodeController) -> None:
    assert not hasattr(NodeController, "tick")  # the kopf timer's entry point is gone
    now_m = time.monotonic()
    for name in ("quiet", "stale", "failing", "waiting"):
        ctl.observe(_node(name))
        ctl.memories(("space", name)).last_full = now_m
        ctl.memories(("space", name)).observed = 1
    ctl.memories(("space", "stale")).last_full = now_m - CONFIG.resync
    ctl.memories(("space", "failing")).backoff = Backoff(failures=1, next_try=now_m - 1)
    ctl.memories(("space", "waiting")).backoff = Backoff(failures=1, next_try=now_m + 60)
    ctl.observe(_node("new"))  # not reconciled yet: its watch event queued it
    assert ctl.sweep() == 2
    assert sorted(ctl.queued) == [("space", "failing", "resync"), ("space", "stale", "resync")]  # type: ignore[attr-defined]


def test_a_rotation_left_behind_is_picked_up_after_patience() -> None:
    body = _node("a", annotations={"trustspace.io/rotate-key": "now"})
    memory = NodeMemory(last_full=100.0, observed=1)
    now = nodes.now_utc()
    assert schedule.due(body, memory, CONFIG, 101.0, now) is None
    assert schedule.due(body, memory, CONFIG, 100.0 + CONFIG.publish_wait, now) == "timer"


def test_the_docstrings_name_entry_points_that_exist() -> None:
    doc = nodes.__doc__ or ""
    assert "timer" not in doc and "kopf create" not in doc
    for name in ("node_changed", "enqueue", "sweep", "bundle_published", "cleanup"):
        assert f"NodeController.{name}" in doc
        assert callable(getattr(NodeController, name))
