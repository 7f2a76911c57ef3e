"""``audit verify``: re-check everything the collector holds, and name the first problem.

For every node, in seq order: each stored batch's header hash, its SM2 signature (with the
node's key from the trust bundle, at any time in its validity - a retired key still proves
old batches), its link to the previous batch, that its events are exactly seq first..last,
that they chain from the previous event and hash to the header's Merkle root. Then the global
log: every leaf hash recomputed from its stored entry, leaf indexes dense, and the newest
signed checkpoint's root equal to the root of that many leaves.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from pydantic import ValidationError

from trustspace.audit import merkle
from trustspace.audit.batch import GENESIS_BATCH_HASH, BatchHeader, events_root
from trustspace.audit.checkpoint import CheckpointError, open_checkpoint
from trustspace.audit.event import GENESIS_HASH, Event
from trustspace.crypto import InvalidSignature, SM2PublicKey
from trustspace.trust import TrustBundle
from trustspace_operator.collector.storage import CollectorStorage


@dataclass(frozen=True)
class Problem:
    where: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.code}: {self.message}"


@dataclass(frozen=True)
class Report:
    nodes: int
    events: int
    leaves: int
    problem: Problem | None


def _node_key(bundle: TrustBundle | None, node: str, key_id: str) -> SM2PublicKey | None:
    if bundle is None:
        return None
    for key in bundle.node(node).keys:
        if key.key_id == key_id:
            return SM2PublicKey.from_pem(key.public_key)
    return None


def verify_storage(
    storage: CollectorStorage,
    bundle: TrustBundle | None,
    hub_key: SM2PublicKey | None = None,
    key_name: str = "trustspace-hub",
) -> Report:
    events_seen = 0
    leaf_owner: dict[int, str] = {}
    states = storage.nodes()
    for state in states:
        node = state.node
        prev_hash, prev_batch, expected = GENESIS_HASH, GENESIS_BATCH_HASH, 1
        for stored in storage.iter_batches(node):
            where = f"node {node} batch {stored.first_seq}..{stored.last_seq}"
            try:
                header = BatchHeader.model_validate_json(stored.header)
            except ValidationError:
                return Report(
                    len(states),
                    events_seen,
                    0,
                    Problem(where, "header_corrupt", "stored header does not parse"),
                )
            if header.hash() != stored.hash:
                return Report(
                    len(states),
                    events_seen,
                    0,
                    Problem(
                        where, "header_altered", "stored header does not hash to its recorded hash"
                    ),
                )
            if header.first_seq != expected:
                return Report(
                    len(states),
                    events_seen,
                    0,
                    Problem(where, "gap", f"expected batch starting at seq {expected}"),
                )
            if header.prev_batch_hash != prev_batch or header.prev_event_hash != prev_hash:
                return Report(
                    len(states),
                    events_seen,
                    0,
                    Problem(where, "chain_broken", "batch does not link to the previous batch"),
                )
            key = _node_key(bundle, node, header.key_id)
            if bundle is not None:
                if key is None:
                    return Report(
                        len(states),
                        events_seen,
                        0,
                        Problem(
                            where, "unknown_key", f"key {header.key_id[:16]} not in trust bundle"
                        ),
                    )
                try:
                    key.verify(header.canonical(), base64.b64decode(stored.signature))
                except (InvalidSignature, ValueError, binascii.Error):
                    return Report(
                        len(states),
                        events_seen,
                        0,
                        Problem(
                            where, "bad_signature", "SM2 signature over the header does not verify"
                        ),
                    )
            rows = storage.event_bodies(node, header.first_seq, header.last_seq)
            events: list[Event] = []
            for i, (seq, body, leaf) in enumerate(rows):
                want = header.first_seq + i
                if seq != want:
                    return Report(
                        len(states),
                        events_seen,
                        0,
                        Problem(f"node {node} seq {want}", "event_missing", "event is not stored"),
                    )
                try:
                    event = Event.model_validate_json(body)
                except ValidationError:
                    return Report(
                        len(states),
                        events_seen,
                        0,
                        Problem(
                            f"node {node} seq {seq}", "event_corrupt", "stored event does not parse"
                        ),
                    )
                if event.seq != seq or event.node != node:
                    return Report(
                        len(states),
                        events_seen,
                        0,
                        Problem(
                            f"node {node} seq {seq}",
                            "event_altered",
                            f"stored event says node {event.node} seq {event.seq}",
                        ),
                    )
                if event.prev != prev_hash:
                    return Report(
                        len(states),
                        events_seen,
                        0,
                        Problem(
                            f"node {node} seq {seq}",
                            "chain_broken",
                            "prev does not equal the hash of the preceding event",
                        ),
                    )
                prev_hash = event.hash()
                leaf_owner[leaf] = f"{node}/{seq}"
                events.append(event)
            if len(rows) != header.count:
                return Report(
                    len(states),
                    events_seen,
                    0,
                    Problem(
                        f"node {node} seq {header.first_seq + len(rows)}",
                        "event_missing",
                        f"batch holds {len(rows)} of {header.count} events",
                    ),
                )
            if events_root(events) != header.merkle_root:
                return Report(
                    len(states),
                    events_seen,
                    0,
                    Problem(where, "merkle_root_mismatch", "events do not hash to the signed root"),
                )
            events_seen += len(events)
            prev_batch, expected = stored.hash, header.last_seq + 1
        if expected - 1 != state.last_seq or prev_hash != state.last_hash:
            return Report(
                len(states),
                events_seen,
                0,
                Problem(
                    f"node {node}",
                    "head_mismatch",
                    f"stored events end at seq {expected - 1}, node record says {state.last_seq}",
                ),
            )
    compact = merkle.CompactRange()
    for idx, stored_hash, data in storage.iter_leaves():
        if idx != compact.size:
            return Report(
                len(states),
                events_seen,
                compact.size,
                Problem(f"leaf {compact.size}", "leaf_missing", f"next stored leaf is {idx}"),
            )
        if not data or merkle.leaf_hash(data) != stored_hash:
            return Report(
                len(states),
                events_seen,
                compact.size,
                Problem(
                    f"leaf {idx}",
                    "leaf_altered",
                    f"leaf hash does not match its entry ({leaf_owner.get(idx, 'document')})",
                ),
            )
        compact.append(stored_hash)
    cp = storage.latest_checkpoint()
    if cp is not None:
        where = f"checkpoint {cp.size}"
        if hub_key is not None:
            try:
                parsed = open_checkpoint(cp.note, key_name, hub_key)
            except CheckpointError as exc:
                return Report(
                    len(states),
                    events_seen,
                    compact.size,
                    Problem(where, "bad_checkpoint", str(exc)),
                )
            if parsed.size != cp.size or parsed.root_hash != cp.root:
                return Report(
                    len(states),
                    events_seen,
                    compact.size,
                    Problem(where, "bad_checkpoint", "note differs from the stored size/root"),
                )
        if cp.size > compact.size:
            return Report(
                len(states),
                events_seen,
                compact.size,
                Problem(
                    where,
                    "leaf_missing",
                    f"checkpoint covers {cp.size} leaves, {compact.size} stored",
                ),
            )
        hashes = storage.leaf_hashes(0, cp.size)
        if merkle.root_from_hashes(hashes) != cp.root:
            return Report(
                len(states),
                events_seen,
                compact.size,
                Problem(where, "root_mismatch", "stored leaves do not hash to the signed root"),
            )
    return Report(len(states), events_seen, compact.size, None)


def dumps(report: Report) -> str:
    return json.dumps(
        {
            "nodes": report.nodes,
            "events": report.events,
            "leaves": report.leaves,
            "ok": report.problem is None,
            "problem": None if report.problem is None else report.problem.__dict__,
        },
        indent=2,
    )
