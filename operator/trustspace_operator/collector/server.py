"""The collector's HTTPS API.

Authenticated (SM2 request signature, see :mod:`trustspace.audit.auth`):

* ``POST /v1/audit/batches`` - a signed batch; 200 ``{"ackedSeq", "duplicate"}`` after commit;
  4xx ``{"code", "message"}`` on rejection (nothing stored);
* ``GET /v1/audit/nodes/{node}/ack`` - the last seq the hub holds durably for the caller;
* ``POST /v1/heartbeat`` - agent liveness, key id, policy bundle version;
* ``POST /v1/evidence`` - ``{"digest": <hex SM3>, "name"?}`` -> evidence receipt.

Public (everything they return is signed or verifiable against a signed checkpoint):

* ``GET /v1/checkpoint`` - the latest signed checkpoint (text/plain signed note);
* ``GET /v1/proofs/inclusion?index=I&size=N`` (or ``node=&seq=``);
* ``GET /v1/proofs/consistency?first=M&second=N``;
* ``GET /healthz``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from trustspace import clock
from trustspace.api.constants import NodeReason
from trustspace.audit import auth, merkle
from trustspace.audit.errors import AuditError
from trustspace.audit.keyfile import KeyFile
from trustspace.audit.receipt import build_receipt
from trustspace.crypto import InvalidSignature
from trustspace.onethread import OneThread
from trustspace.trust import TrustBundleFile, TrustError
from trustspace_operator.collector.checkpointer import Checkpointer
from trustspace_operator.collector.ingest import Gap, apply_batch, check_batch
from trustspace_operator.collector.node_reports import AuditProgress, Heartbeat, reason_of
from trustspace_operator.collector.order import NodeOrder
from trustspace_operator.collector.status_reporter import StatusReporter
from trustspace_operator.collector.storage import CollectorStorage, StaleState

log = logging.getLogger(__name__)

NODE_KEY = web.AppKey("node", str)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# How long a batch that arrived before its predecessor waits for it (agents pipeline a few
# batches); a real gap is rejected after this.
ORDER_WAIT_SECONDS = 2.0


class Collector:
    def __init__(
        self,
        db: OneThread[CollectorStorage],
        trust: TrustBundleFile,
        hub_keys: KeyFile,
        checkpointer: Checkpointer,
        status: StatusReporter,
        key_name: str,
    ) -> None:
        self.db = db
        self.trust = trust
        self.hub_keys = hub_keys
        self.checkpointer = checkpointer
        self.status = status
        self.key_name = key_name
        self.nonces = auth.NonceCache()
        self.order = NodeOrder(ORDER_WAIT_SECONDS)

    # -- authentication --------------------------------------------------------------------

    def authenticate(self, request: web.Request, body: bytes) -> str:
        h = request.headers
        node, key_id = h.get(auth.H_NODE), h.get(auth.H_KEY_ID)
        ts, nonce, sig = h.get(auth.H_TIMESTAMP), h.get(auth.H_NONCE), h.get(auth.H_SIGNATURE)
        if not (node and key_id and ts and nonce and sig):
            raise AuditError("missing_auth", "request is not signed (X-Trustspace-* headers)")
        now = time.time()
        if not ts.isdigit() or abs(now - int(ts)) > auth.MAX_SKEW_SECONDS:
            raise AuditError("stale_timestamp", "request timestamp is more than 5 minutes off")
        key = self.trust.current().node_key(node, key_id, clock.now())
        try:
            signature = base64.b64decode(sig, validate=True)
            key.verify(
                auth.signing_input(request.method, request.path_qs, ts, nonce, body), signature
            )
        except (InvalidSignature, binascii.Error, ValueError):
            raise AuditError("bad_signature", "request signature does not verify") from None
        if not self.nonces.check_and_add(f"{node}:{nonce}", now):
            raise AuditError("replayed_nonce", "this request was already received (nonce reused)")
        return node

    # -- handlers --------------------------------------------------------------------------

    async def post_batch(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            node = self.authenticate(request, body)
        except AuditError as exc:
            log.warning("unauthenticated batch rejected: %s", exc)
            return exc.response()
        first_seq = 0
        try:
            data = _parse_json(body)
            batch = check_batch(data, node, self.trust.current(), clock.now())
            first_seq = batch.header.first_seq
            try:
                outcome = await self.order.apply(
                    node, first_seq, lambda: self.db.call(lambda s: apply_batch(s, batch))
                )
            except StaleState as exc:
                raise AuditError("stale_state", str(exc)) from None
        except AuditError as exc:
            if isinstance(exc, Gap) and exc.after_rejection:
                # Pipelined behind a batch that was just rejected: that one's reason stands.
                log.info("batch from %s not applied: %s", node, exc)
                return exc.response()
            log.warning("batch from %s rejected: %s", node, exc)
            await self.order.rejected(node, first_seq)
            await self.status.streaming(node, False, reason_of(exc.code), exc.message)
            return exc.response()
        if not outcome.duplicate:
            count = await self.db.call(lambda s: s.leaf_count())
            self.checkpointer.nudge(count)
            last_time = batch.events[-1].time
            lag = (clock.now() - clock.parse(last_time)).total_seconds()
            self.status.progress(node, AuditProgress(outcome.acked_seq, last_time, lag))
        await self.status.streaming(
            node, True, NodeReason.AUDIT_STREAMING, "audit batches verify and are stored"
        )
        return web.json_response({"ackedSeq": outcome.acked_seq, "duplicate": outcome.duplicate})

    async def get_ack(self, request: web.Request) -> web.Response:
        try:
            node = self.authenticate(request, await request.read())
        except AuditError as exc:
            return exc.response()
        if request.match_info["node"] != node:
            return AuditError("node_mismatch", "a node may only ask for its own stream").response()
        state = await self.db.call(lambda s: s.node_state(node))
        return web.json_response(
            {"node": node, "lastSeq": state.last_seq, "lastBatchHash": state.last_batch_hash}
        )

    async def post_heartbeat(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            node = self.authenticate(request, body)
        except AuditError as exc:
            return exc.response()
        at = clock.rfc3339_micro()
        await self.db.call(lambda s: s.record_heartbeat(node, body.decode(errors="replace"), at))
        self.status.heartbeat(node, Heartbeat.parse(body, at))
        return web.json_response({"receivedAt": at})

    async def post_evidence(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            self.authenticate(request, body)
            try:
                data = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise AuditError("malformed_request", "body is not JSON") from None
            digest = data.get("digest") if isinstance(data, dict) else None
            name = data.get("name") if isinstance(data, dict) else None
            if not isinstance(digest, str) or not _HEX64.match(digest):
                raise AuditError("malformed_request", "digest must be 64 lowercase hex (SM3)")
            if name is not None and (not isinstance(name, str) or len(name) > 253):
                raise AuditError("malformed_request", "name must be a string of <= 253 chars")
        except AuditError as exc:
            return exc.response()
        at = clock.rfc3339_micro()
        index, entry = await self.db.call(lambda s: s.add_document(digest, name, at))
        cp = await self.checkpointer.wait_for_size(index + 1, timeout=30)
        hashes = await self.db.call(lambda s: s.leaf_hashes(0, cp.size))
        receipt = build_receipt(
            document=entry,
            leaf_index=index,
            tree_size=cp.size,
            proof=merkle.inclusion_proof(hashes, index),
            checkpoint_note=cp.note,
            key_name=self.key_name,
            hub_key_id=self.hub_keys.get().key_id,
        )
        return web.json_response(receipt)

    async def get_checkpoint(self, request: web.Request) -> web.Response:
        cp = self.checkpointer.latest or await self.checkpointer.checkpoint()
        if cp is None:
            return AuditError("no_checkpoint", "no checkpoint yet").response()
        return web.Response(text=cp.note, content_type="text/plain")

    async def get_inclusion(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            cp = self.checkpointer.latest
            size = int(q["size"]) if "size" in q else (cp.size if cp else 0)
            if "index" in q:
                index: int | None = int(q["index"])
            else:
                node, seq = q["node"], int(q["seq"])
                index = await self.db.call(lambda s: s.event_leaf_index(node, seq))
            if index is None:
                raise AuditError("not_found", f"no event {node}/{seq}")
            count = await self.db.call(lambda s: s.leaf_count())
            if not 0 < size <= count:
                raise AuditError("bad_size", f"size must be in 1..{count}")
            hashes = await self.db.call(lambda s: s.leaf_hashes(0, size))
            proof = merkle.inclusion_proof(hashes, index)
        except (KeyError, ValueError) as exc:
            return AuditError("bad_query", str(exc)).response()
        except AuditError as exc:
            return exc.response()
        return web.json_response(
            {
                "leafIndex": index,
                "treeSize": size,
                "leafHash": hashes[index].hex(),
                "proof": [base64.b64encode(p).decode() for p in proof],
            }
        )

    async def get_consistency(self, request: web.Request) -> web.Response:
        try:
            first, second = int(request.query["first"]), int(request.query["second"])
            count = await self.db.call(lambda s: s.leaf_count())
            if not 0 <= first <= second <= count:
                raise AuditError("bad_size", f"need 0 <= first <= second <= {count}")
            hashes = await self.db.call(lambda s: s.leaf_hashes(0, second))
            proof = merkle.consistency_proof(hashes, first)
        except (KeyError, ValueError) as exc:
            return AuditError("bad_query", str(exc)).response()
        except AuditError as exc:
            return exc.response()
        return web.json_response(
            {
                "first": first,
                "second": second,
                "proof": [base64.b64encode(p).decode() for p in proof],
            }
        )

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    def app(self, max_body: int) -> web.Application:
        @web.middleware
        async def trust_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
            try:
                return await handler(request)
            except TrustError as exc:
                node = request.headers.get(auth.H_NODE, "?")
                log.warning("request from %s rejected: %s", node, exc)
                return exc.response()

        app = web.Application(client_max_size=max_body, middlewares=[trust_errors])
        app.router.add_post("/v1/audit/batches", self.post_batch)
        app.router.add_get("/v1/audit/nodes/{node}/ack", self.get_ack)
        app.router.add_post("/v1/heartbeat", self.post_heartbeat)
        app.router.add_post("/v1/evidence", self.post_evidence)
        app.router.add_get("/v1/checkpoint", self.get_checkpoint)
        app.router.add_get("/v1/proofs/inclusion", self.get_inclusion)
        app.router.add_get("/v1/proofs/consistency", self.get_consistency)
        app.router.add_get("/healthz", self.healthz)
        return app


def _parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    # orjson refuses a few things json accepts (NaN, lone surrogates, huge integers); the
    # stdlib parser has the last word so such a body gets the same answer as before.
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise AuditError("malformed_batch", "body is not JSON") from None


def describe(payload: Any) -> str:
    return json.dumps(payload)[:200]
