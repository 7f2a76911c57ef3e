"""The ingest decision for one batch: store it, acknowledge a duplicate, or reject precisely.

Order of checks: the batch parses; it belongs to the authenticated node; its signing key is
valid for that node now (trust bundle); the SM2 signature over the header verifies; its events
match the header (count, node, seq contiguity, chain, Merkle root). Then, against what the hub
holds: an identical batch already stored is a duplicate (acknowledged, not stored again); a
different batch over stored seqs is a fork; a batch that does not start right after the last
stored seq is a gap (this is also how reordered batches show); a batch that starts right but
does not link to the stored chain head or batch head is a broken chain.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from trustspace import clock
from trustspace.audit.batch import Batch, BatchError, ShippedBatch
from trustspace.audit.errors import AuditError
from trustspace.audit.wire import check_wire_batch
from trustspace.trust import TrustBundle
from trustspace_operator.collector.storage import CollectorStorage, NodeState


class Gap(AuditError):
    """The batch does not start right after ``held``, the last seq the hub holds."""

    def __init__(self, message: str, held: int) -> None:
        super().__init__("gap", message)
        self.held = held
        self.after_rejection = False
        """Set by :mod:`.order`: the batch waited behind one that was rejected."""


@dataclass(frozen=True)
class Outcome:
    acked_seq: int
    duplicate: bool
    state: NodeState


def check_batch(data: Any, node: str, bundle: TrustBundle, now: dt.datetime) -> ShippedBatch:
    """Everything that needs no stored state; raises :class:`AuditError`.

    A batch in canonical wire form (what agents send) is verified on plain dicts
    (:func:`~trustspace.audit.wire.check_wire_batch`); anything that does not pass there
    goes through the models, which give the precise reason.
    """
    fast = check_wire_batch(data, node, lambda key_id: bundle.node_key(node, key_id, now))
    if fast is not None:
        return fast
    batch = Batch.from_wire(data)
    if batch.header.node != node:
        raise BatchError(
            "node_mismatch", f"node {node!r} sent a batch of node {batch.header.node!r}"
        )
    key = bundle.node_key(node, batch.header.key_id, now)
    batch.verify_signature(key)
    batch.check_contents()
    return batch


def apply_batch(storage: CollectorStorage, batch: ShippedBatch) -> Outcome:
    """Run in the storage thread: decide against the stored state and write."""
    h = batch.header
    header_hash = h.hash()
    state = storage.node_state(h.node)
    if h.first_seq <= state.last_seq:
        stored = storage.batch_at(h.node, h.first_seq)
        if stored is not None and stored.hash == header_hash:
            return Outcome(state.last_seq, True, state)
        raise AuditError(
            "fork",
            f"batch {h.first_seq}..{h.last_seq} differs from the events the hub already holds "
            f"for seq {h.first_seq}..{min(h.last_seq, state.last_seq)}",
        )
    if h.first_seq != state.last_seq + 1:
        raise Gap(
            f"hub holds seq 1..{state.last_seq}; batch starts at {h.first_seq} "
            f"(missing {state.last_seq + 1}..{h.first_seq - 1}, or batches out of order)",
            state.last_seq,
        )
    if h.prev_event_hash != state.last_hash:
        raise AuditError(
            "chain_mismatch",
            f"batch {h.first_seq}..{h.last_seq} does not link to the hash of stored seq "
            f"{state.last_seq}",
        )
    if h.prev_batch_hash != state.last_batch_hash:
        raise AuditError(
            "prev_batch_mismatch",
            f"batch {h.first_seq}..{h.last_seq} names a previous batch the hub does not hold",
        )
    new = storage.store_batch(batch, header_hash, clock.rfc3339_micro())
    return Outcome(new.last_seq, False, new)
