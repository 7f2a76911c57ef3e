"""The tamper-evident audit record shared by the edge agent and the hub collector (B4, B2 存证).

Modules, from the bottom up:

* :mod:`.canonical` - the one byte encoding that hashing and signing use;
* :mod:`.event` - an audit event and its SM3 hash chain;
* :mod:`.merkle` - RFC 9162 Merkle trees with SM3, inclusion and consistency proofs;
* :mod:`.batch` - a signed batch of consecutive events, as shipped edge -> hub;
* :mod:`.checkpoint` - signed tree heads in the C2SP tlog-checkpoint / signed-note format;
* :mod:`.receipt` - evidence receipts, verifiable offline with the hub's public key;
* :mod:`.auth` - SM2 request signatures between agent and collector;
* :mod:`.heartbeat` - when an agent counts as gone (AgentReady -> Unknown).
"""

from trustspace.audit.batch import Batch, BatchError, BatchHeader, seal_batch
from trustspace.audit.canonical import canonical_json
from trustspace.audit.event import GENESIS_HASH, Event, EventFields, chain_event

__all__ = [
    "GENESIS_HASH",
    "Batch",
    "BatchError",
    "BatchHeader",
    "Event",
    "EventFields",
    "canonical_json",
    "chain_event",
    "seal_batch",
]
