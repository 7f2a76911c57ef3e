"""What the collector stores, as its ingest and verification read it, and the interface
(:class:`CollectorStorage`) every backend implements."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from trustspace.audit.batch import GENESIS_BATCH_HASH, ShippedBatch
from trustspace.audit.event import GENESIS_HASH


@dataclass(frozen=True)
class NodeState:
    node: str
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    last_batch_hash: str = GENESIS_BATCH_HASH
    last_event_time: str | None = None


@dataclass(frozen=True)
class StoredBatch:
    node: str
    first_seq: int
    last_seq: int
    hash: str
    header: str
    signature: str
    received_at: str


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str
    created: str


class StaleState(RuntimeError):
    """The node's state changed between the decision and the write (a concurrent request)."""


class CollectorStorage(Protocol):
    """Small on purpose: everything the ingest decision needs for one node, one atomic
    "store this batch", the global leaf log, documents, checkpoints and heartbeats."""

    def node_state(self, node: str) -> NodeState: ...
    def nodes(self) -> list[NodeState]: ...
    def batch_at(self, node: str, first_seq: int) -> StoredBatch | None: ...
    def store_batch(self, batch: ShippedBatch, header_hash: str, received_at: str) -> NodeState: ...
    def record_heartbeat(self, node: str, body: str, at: str) -> None: ...
    def heartbeat(self, node: str) -> tuple[str, str] | None: ...
    def add_document(
        self, digest: str, name: str | None, at: str
    ) -> tuple[int, dict[str, Any]]: ...
    def leaf_count(self) -> int: ...
    def leaf_hashes(self, start: int, end: int) -> list[bytes]: ...
    def event_leaf_index(self, node: str, seq: int) -> int | None: ...
    def save_checkpoint(self, cp: StoredCheckpoint) -> None: ...
    def latest_checkpoint(self) -> StoredCheckpoint | None: ...
    def iter_batches(self, node: str) -> Iterator[StoredBatch]: ...
    def event_bodies(self, node: str, first: int, last: int) -> list[tuple[int, str, int]]: ...
    def iter_leaves(self) -> Iterator[tuple[int, bytes, bytes]]: ...
    def close(self) -> None: ...
