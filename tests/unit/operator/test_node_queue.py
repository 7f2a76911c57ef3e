"""The reconcile queue (nodes/queue.py): coalescing, per-node serialisation, backoff."""

from __future__ import annotations

import threading
import time

import pytest

from trustspace.kube import Obj
from trustspace_operator.nodes.memory import Backoff, NodeKey
from trustspace_operator.nodes.queue import CoalescingQueue, back_off

A: NodeKey = ("space", "a")
B: NodeKey = ("space", "b")


class Recorder:
    """A reconcile callback that records its calls and can hold one node's reconcile."""

    def __init__(self) -> None:
        self.calls: list[tuple[NodeKey, str, Obj | None]] = []
        self.hold: dict[NodeKey, threading.Event] = {}
        self.started: dict[NodeKey, threading.Event] = {}
        self.queue: CoalescingQueue | None = None
        self.locked_during: list[bool] = []

    def __call__(self, key: NodeKey, cause: str, body: Obj | None) -> None:
        self.calls.append((key, cause, body))
        assert self.queue is not None
        self.locked_during.append(self.queue.lock_for(key).locked())
        self.started.setdefault(key, threading.Event()).set()
        gate = self.hold.get(key)
        if gate is not None:
            assert gate.wait(5)


def _queue(workers: int = 4) -> tuple[CoalescingQueue, Recorder]:
    recorder = Recorder()
    queue = CoalescingQueue(recorder, workers=workers)
    recorder.queue = queue
    return queue, recorder


def _settle(queue: CoalescingQueue, rec: Recorder, calls: int, *keys: NodeKey) -> None:
    """Wait for `calls` reconciles in all, then for `keys` to be idle."""
    deadline = time.monotonic() + 5
    while len(rec.calls) < calls or any(queue.busy(key) for key in keys):
        assert time.monotonic() < deadline, "the queue did not drain"
        time.sleep(0.01)
    time.sleep(0.05)  # whatever else would run (it must not) has had its chance


def _body(version: str) -> Obj:
    return {"metadata": {"namespace": "space", "name": "a", "resourceVersion": version}}


def _busy_worker() -> tuple[CoalescingQueue, Recorder]:
    """A queue whose only worker is held by node B: what is queued for A waits."""
    queue, rec = _queue(workers=1)
    rec.hold[B] = threading.Event()
    queue.enqueue(B, "create")
    assert rec.started.setdefault(B, threading.Event()).wait(5)
    return queue, rec


def test_events_for_a_waiting_node_coalesce_into_one_reconcile_with_the_newest_body() -> None:
    queue, rec = _busy_worker()
    for cause, version in (("create", "1"), ("update", "2"), ("resync", "3")):
        queue.enqueue(A, cause, _body(version))
    rec.hold[B].set()
    _settle(queue, rec, 2, A, B)
    assert rec.calls[1:] == [(A, "create", _body("3"))]  # the first cause, the newest body


def test_a_bodiless_event_makes_the_waiting_reconcile_read_the_node() -> None:
    queue, rec = _busy_worker()
    queue.enqueue(A, "update", _body("1"))
    queue.enqueue(A, "owned", None)  # a watched object changed: read the node afresh
    queue.enqueue(A, "update", _body("2"))
    rec.hold[B].set()
    _settle(queue, rec, 2, A, B)
    assert rec.calls[1:] == [(A, "update", None)]


def test_an_event_during_a_reconcile_queues_another() -> None:
    queue, rec = _queue()
    rec.hold[A] = threading.Event()
    queue.enqueue(A, "create", _body("1"))
    assert rec.started.setdefault(A, threading.Event()).wait(5)
    queue.enqueue(A, "update", _body("2"))  # may hold news the running reconcile missed
    rec.hold[A].set()
    _settle(queue, rec, 2, A)
    assert [cause for _, cause, _ in rec.calls] == ["create", "update"]


def test_one_reconcile_per_node_at_a_time_and_others_run_meanwhile() -> None:
    queue, rec = _queue(workers=2)
    rec.hold[A] = threading.Event()
    queue.enqueue(A, "create")
    assert rec.started.setdefault(A, threading.Event()).wait(5)
    assert queue.busy(A)
    queue.enqueue(B, "create")
    _settle(queue, rec, 2, B)  # B ran while A's reconcile was held
    assert (B, "create", None) in rec.calls
    assert queue.busy(A)
    rec.hold[A].set()
    _settle(queue, rec, 2, A)
    assert all(rec.locked_during)  # every callback ran holding its node's lock
    assert not queue.busy(A)


def test_a_failing_reconcile_does_not_stop_the_workers() -> None:
    queue, rec = _queue(workers=1)

    def reconcile(key: NodeKey, cause: str, body: Obj | None) -> None:
        rec(key, cause, body)
        if cause == "boom":
            raise RuntimeError("boom")

    queue = CoalescingQueue(reconcile, workers=1)
    rec.queue = queue
    queue.enqueue(A, "boom")
    _settle(queue, rec, 1, A)
    queue.enqueue(A, "after")
    _settle(queue, rec, 2, A)
    assert [cause for _, cause, _ in rec.calls] == ["boom", "after"]


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    backoff = Backoff()
    delays = [back_off(backoff, 60.0, 100.0) for _ in range(8)]
    assert backoff.failures == 8
    for failures, delay in enumerate(delays, start=1):
        base = min(60.0, 2.0**failures)
        assert base * 0.8 <= delay <= base * 1.2
    assert backoff.next_try == pytest.approx(100.0 + delays[-1])
    assert max(delays) <= 72.0
