"""What the operator process remembers of each node between reconciles (one record a node)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

from trustspace.kube import Obj

NodeKey = tuple[str, str]


@dataclass
class Backoff:
    """Retries of a node whose cluster or API server refused: when the next one is due."""

    failures: int = 0
    next_try: float = 0.0


@dataclass
class NodeMemory:
    #: Since the last reconcile that failed (None: the last one succeeded).
    backoff: Backoff | None = None
    #: time.monotonic() at the end of the last reconcile; None: not reconciled by this process.
    last_full: float | None = None
    #: time.monotonic() when this process staged the node's next key.
    staged_since: float | None = None
    #: What this process has already done per node: the generation its status reports,
    #: and the rotation request it has taken up. Watch events that carry older news (our
    #: own writes coming back, kopf's finalizer patch) are then recognised as such.
    observed: int | None = None
    taken_request: str | None = None
    #: The latest watched version of the node (without managedFields), for the periodic
    #: sweep and the space controller.
    body: Obj | None = None
    #: The resourceVersion our last status write of the node produced.
    written_rv: str | None = None
    #: The key Secret as last read or written (without managedFields).
    secret: Obj | None = None


class NodeMemories:
    """Every node's record; created on first mention, dropped when the node is forgotten."""

    def __init__(self) -> None:
        self._records: dict[NodeKey, NodeMemory] = {}
        self._guard = threading.Lock()

    def __call__(self, key: NodeKey) -> NodeMemory:
        record = self._records.get(key)
        if record is None:
            with self._guard:
                record = self._records.setdefault(key, NodeMemory())
        return record

    def get(self, key: NodeKey) -> NodeMemory | None:
        return self._records.get(key)

    def forget(self, key: NodeKey) -> None:
        with self._guard:
            self._records.pop(key, None)

    def bodies(self) -> Iterator[tuple[NodeKey, Obj]]:
        """The watched version of every node that has one (a snapshot: safe while others add)."""
        for key, record in list(self._records.items()):
            body = record.body
            if body is not None:
                yield key, body
