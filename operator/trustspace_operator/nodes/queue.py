"""The reconcile queue: a node waits once however many events pile up, one reconcile of a
node runs at a time, on a pool of worker threads."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from trustspace.kube import Obj
from trustspace_operator.nodes.memory import Backoff, NodeKey

log = logging.getLogger(__name__)

#: Runs one queued reconcile: the node, why it was queued and the watched body that queued
#: it (None: read the node first). Called with the node's lock held.
Reconcile = Callable[[NodeKey, str, Obj | None], None]


class CoalescingQueue:
    def __init__(self, reconcile: Reconcile, *, workers: int) -> None:
        self._reconcile = reconcile
        self._locks: dict[NodeKey, threading.Lock] = {}
        #: Nodes waiting for a worker, with the cause and the watched body that queued them.
        self._queued: dict[NodeKey, tuple[str, Obj | None]] = {}
        self._guard = threading.Lock()
        self._workers = ThreadPoolExecutor(
            max_workers=max(workers, 1), thread_name_prefix="reconcile"
        )

    def lock_for(self, key: NodeKey) -> threading.Lock:
        """The lock that keeps a node's reconciles (and its cleanup) one at a time."""
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def enqueue(self, key: NodeKey, cause: str, body: Obj | None = None) -> None:
        """Reconcile the node soon on a worker thread. A node already waiting is not queued
        again: the one reconcile sees every change so far. `body`: the node as a watch event
        just delivered it (saves a read); without one, the node is read first."""
        with self._guard:
            waiting = self._queued.get(key)
            if waiting is not None:
                if waiting[1] is not None:  # keep the newest watched body, or read afresh
                    self._queued[key] = (waiting[0], body)
                return
            self._queued[key] = (cause, body)
        self._workers.submit(self._run, key)

    def busy(self, key: NodeKey) -> bool:
        """Whether the node waits for a worker or is being reconciled right now."""
        return key in self._queued or self.lock_for(key).locked()

    def forget(self, key: NodeKey) -> None:
        with self._guard:
            self._locks.pop(key, None)

    def _run(self, key: NodeKey) -> None:
        with self._guard:
            # Dequeued before it runs: a change during the reconcile queues another.
            cause, body = self._queued.pop(key)
        try:
            with self.lock_for(key):
                self._reconcile(key, cause, body)
        except Exception:  # the sweep retries; a worker thread must not die silently
            log.exception("reconcile of %s/%s (%s) failed", key[0], key[1], cause)


def back_off(backoff: Backoff, max_backoff: float, now_m: float) -> float:
    """Count one more failure; returns the delay before the next try (doubling, capped,
    with jitter so that nodes failing together do not retry together)."""
    backoff.failures += 1
    jitter = random.uniform(0.8, 1.2)  # noqa: S311 - spreads retries, not a secret
    delay = min(max_backoff, 2.0 ** min(backoff.failures, 10)) * jitter
    backoff.next_try = now_m + delay
    return delay
