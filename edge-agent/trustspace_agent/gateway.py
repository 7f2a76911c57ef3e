"""The security gateway (B2) on every node: decide, protect, audit, deliver, receive.

Outbound (``POST /v1/transfers`` on the local API)::

    parse -> decide (PolicyEngine, signed bundle) -> breakers -> desensitise (B6)
      -> SM4-GCM for the destination (B3) -> audit requested/decision/protected (fsynced)
      -> allow: deliver over HTTPS, SM2-signed -> audit delivered
      -> review: hold here, encrypted (B5, B7) -> audit queued

Nothing moves before its audit events are durable: a full audit store answers 503 and
nothing is delivered (B4). Inbound (``POST /v1/inbound`` on the HTTPS port): verify the
sender's SM2 signature against the trust bundle, decide again with this node's own
certifications, check the signed approvals of a reviewed transfer, decrypt, audit, store.

HTTP errors are ``{"code", "message", "field"?}``; every refusal is an audit event.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from trustspace.audit import auth
from trustspace.audit.event import EventFields
from trustspace.audit.keyfile import KeyFile
from trustspace.crypto import (
    CryptoError,
    DecryptionError,
    InvalidSignature,
    SM2PublicKey,
    sm3,
)
from trustspace.policy import (
    Decision,
    FieldProtection,
    PolicyEngine,
    TransferRequest,
    Verdict,
    derive_link_key,
    desensitise,
)
from trustspace.trust import TrustBundleFile, TrustError
from trustspace_agent import batchwire
from trustspace_agent.auditq import GroupAppender
from trustspace_agent.breaker import Breaker, BreakerBoard, BreakerSettings, Refusal, Trip
from trustspace_agent.callers import UNAUTHENTICATED, CallerRefused, Callers
from trustspace_agent.config import AgentConfig
from trustspace_agent.delivery import FRAME_TYPE, Outcome, PeerClient
from trustspace_agent.envelope import (
    EnvelopeError,
    Frame,
    decode_frame,
    encode_frame,
    open_sealed,
    protect,
)
from trustspace_agent.gateway_config import GatewayConfig
from trustspace_agent.inbox import Inbox
from trustspace_agent.onethread import OneThread
from trustspace_agent.policyfile import PolicyFile
from trustspace_agent.reviews import (
    DELIVERED,
    EXPIRED,
    HELD,
    REJECTED,
    ApprovalError,
    ApproverKeys,
    ReviewStore,
    progress,
    verify_approval,
)
from trustspace_agent.store import AuditBackpressure
from trustspace_agent.throttle import Throttled, TtlCache
from trustspace_agent.transfer_input import InputError, TransferInput, parse_transfer, read_body

log = logging.getLogger(__name__)

_FRAME_OVERHEAD = 512 * 1024
#: Refusals that say the caller asked for something wrong (not: the gateway is unable).
_PROBING = frozenset({"unknown_node", "opaque_payload", "desensitisation_failed"})


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers or {}
        self.extra = extra
        self.audited = False

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message, **self.extra}
        if self.field:
            body["field"] = self.field
        return body

    def response(self) -> web.Response:
        return _json_response(self.body(), status=self.status, headers=self.headers)


@dataclass
class _Accepted:
    """An inbound frame that passed every check, decrypted, not yet audited or stored."""

    tid: str
    frame: Frame
    decision: Decision
    link_name: str
    link: Breaker
    probing: list[Breaker]
    plaintext: bytes


def _dumps(value: Any) -> bytes:
    """JSON for answers and audit details on the hot paths: orjson, or json for what orjson
    refuses (integers beyond 64 bits in a caller's records)."""
    try:
        return orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, ensure_ascii=False).encode()


def _text(value: Any) -> str:
    return _dumps(value).decode()


def _json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=_dumps(data),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rules(decision: Decision) -> list[str]:
    return [f"{m.kind}/{m.owner}/{m.rule}"[:253] for m in decision.matched][:64]


def _timeout_seconds(text: str) -> float:
    from trustspace.api.common import parse_duration

    try:
        return parse_duration(text).total_seconds()
    except ValueError:
        return 72 * 3600.0


class Gateway:
    def __init__(
        self, config: AgentConfig, gw: GatewayConfig, keys: KeyFile, audit: GroupAppender
    ) -> None:
        self.node = config.node
        self.config = gw
        self.keys = keys
        self.audit = audit
        pinned = SM2PublicKey.from_pem(gw.hub_public_key_file.read_bytes())
        self.trust = TrustBundleFile(gw.trust_bundle_file, pinned)
        self.policy = PolicyFile(gw.policy_bundle_file, self.trust, pinned)
        self.approvers = ApproverKeys(gw.approver_keys_file)
        self.callers = Callers(gw.caller_tokens_file)
        gw.state_dir.mkdir(parents=True, exist_ok=True)
        self.reviews = OneThread(ReviewStore(gw.state_dir / "held.db"), "gw-held")
        self.inbox = OneThread(Inbox(gw.state_dir / "inbox.db"), "gw-inbox")
        self.board = BreakerBoard(gw.state_dir / "breakers.json")
        self.peers = PeerClient(
            self.node, keys, str(gw.peer_ca_file or config.ca_file), gw.delivery_timeout_seconds
        )
        self.nonces = auth.NonceCache()
        self._rate: dict[str, tuple[int, int]] = {}
        self._delivering: set[str] = set()
        self.report_now = asyncio.Event()
        self._key = Throttled(keys.get)
        self._trust = Throttled(self.trust.current)
        self._engine = Throttled(self.policy.current)
        self._node_key: TtlCache[tuple[str, str], SM2PublicKey] = TtlCache(
            lambda k: self._trust().node_key(k[0], k[1], dt.datetime.now(dt.UTC))
        )
        self._peer_key: TtlCache[str, SM2PublicKey] = TtlCache(self._active_peer_key)
        self._settings: dict[tuple[str, tuple[str, ...]], BreakerSettings] = {}
        """Set on a trip or reset: the link reporter sends at once."""

    async def start(self) -> None:
        await self.peers.start()
        held = await self.reviews.call(lambda s: s.count_held())
        for link, n in held.items():
            self.board.get("link", link).in_review = n

    async def close(self) -> None:
        await self.peers.close()
        self.reviews.shutdown()
        self.inbox.shutdown()
        self.reviews.obj.close()
        self.inbox.obj.close()

    # --- helpers ---------------------------------------------------------------------------

    def engine(self) -> PolicyEngine:
        engine = self._engine()
        if engine is None:
            raise GatewayError(
                503, "no_policy_bundle", self.policy.last_error or "no verified policy bundle"
            )
        return engine

    async def record(self, events: list[EventFields]) -> None:
        """Append durably or refuse the operation (503): no audit, no transfer."""
        try:
            await self.audit.append(events)
        except AuditBackpressure as exc:
            raise GatewayError(
                503, "audit_unavailable", f"not audited, so not done: {exc}"
            ) from None
        except Exception as exc:
            log.exception("audit store failure")
            raise GatewayError(
                503, "audit_unavailable", f"audit store failed ({type(exc).__name__})"
            ) from None

    async def record_refusal(
        self,
        actor: str,
        subject: str,
        exc: GatewayError | InputError,
        action: str,
        **context: str | None,
    ) -> None:
        detail = json.dumps(
            {
                "status": exc.status,
                "code": exc.code,
                "field": exc.field,
                "message": exc.message,
                **{k: v[:200] for k, v in context.items() if v is not None},
            }
        )[:1024]
        try:
            await self.audit.append(
                [
                    EventFields(
                        actor=actor,
                        action=action,
                        subject=subject,
                        decision="refused",
                        detail=detail,
                    )
                ]
            )
        except Exception as err:  # the refusal stands whether or not it could be recorded
            log.error("could not audit refusal %s: %s", exc.code, err)

    async def identify(self, request: web.Request, subject: str, action: str) -> str:
        """The verified caller (see :mod:`trustspace_agent.callers`); a refusal is audited
        under ``unauthenticated``, with what the caller claimed and where it came from."""
        try:
            return self.callers.identify(request.headers, request.remote)
        except CallerRefused as refused:
            err = GatewayError(
                refused.status, refused.code, refused.message, refused.field, refused.headers
            )
            # Unauthenticated calls touch no breaker: naming one would let anyone trip it.
            await self.record_refusal(
                UNAUTHENTICATED,
                subject,
                err,
                action,
                claimedCaller=refused.claimed,
                remote=request.remote,
            )
            err.audited = True
            raise err from None

    def settings_for(self, engine: PolicyEngine, decision: Decision) -> BreakerSettings:
        # Parsing the durations of every governing policy was a tenth of a destination's CPU
        # per transfer; the answer only changes with the bundle.
        key = (engine.bundle.hash, decision.policies)
        found = self._settings.get(key)
        if found is None:
            if len(self._settings) > 4096:
                self._settings.clear()
            found = self._settings[key] = BreakerSettings.strictest(
                engine.bundle.circuit_breakers(decision.policies).values()
            )
        return found

    async def on_trip(self, trip: Trip | None, actor: str) -> None:
        if trip is None:
            return
        b = trip.breaker
        log.warning(
            "circuit breaker %s %s tripped: %s: %s", b.kind, b.name, trip.reason, trip.message
        )
        self.board.save()
        self.report_now.set()
        try:
            await self.audit.append(
                [
                    EventFields(
                        actor=actor,
                        action="breaker.tripped",
                        subject=f"{b.kind}/{b.name}",
                        decision=trip.reason,
                        detail=trip.message[:1024],
                    )
                ]
            )
        except Exception as exc:  # the breaker is open whether or not this is recorded
            log.error("could not audit breaker trip: %s", exc)

    @staticmethod
    def refusal_error(r: Refusal) -> GatewayError:
        status, code = (503, "circuit_open") if r.kind == "link" else (429, "caller_circuit_open")
        headers = {}
        if r.resume_at is not None:
            headers["Retry-After"] = str(max(1, int(r.resume_at - time.time()) + 1))
        return GatewayError(
            status,
            code,
            r.message,
            headers=headers,
            breaker={"kind": r.kind, "name": r.name, "state": r.state, "reason": r.reason},
        )

    def pseudonym_key(self, link: str) -> Callable[[FieldProtection], bytes]:
        def key_for(p: FieldProtection) -> bytes:
            ref = p.option("keySecretRef") or {}
            name, key = str(ref.get("name", "")), str(ref.get("key", ""))
            base = self.config.secrets_dir
            if base is None or not name or not key or "/" in name + key or ".." in name + key:
                raise GatewayError(
                    503,
                    "protection_unavailable",
                    f"no pseudonymisation key {name}/{key} for {p.field}: not sent",
                )
            try:
                secret = (base / name / key).read_bytes()
            except OSError:
                raise GatewayError(
                    503,
                    "protection_unavailable",
                    f"pseudonymisation key {name}/{key} is not mounted: not sent",
                ) from None
            return derive_link_key(secret, link)

        return key_for

    def peer_key(self, node: str) -> SM2PublicKey:
        """The destination's active key, parsed at most once a second (like the bundle)."""
        return self._peer_key(node)

    def _active_peer_key(self, node: str) -> SM2PublicKey:
        """The destination's active key (no retireAt, valid now) from the trust bundle."""
        now = dt.datetime.now(dt.UTC)
        try:
            trusted = self._trust().node(node)
        except TrustError as exc:
            raise GatewayError(422, "unknown_node", str(exc), "metadata.destination") from None
        active = [k for k in trusted.keys if k.retire_at is None and k.valid_at(now)]
        if not active:
            raise GatewayError(503, "no_destination_key", f"{node} has no active key")
        return SM2PublicKey.from_pem(active[-1].public_key)

    def check_rate(self, link: str, limit: int | None) -> None:
        if limit is None:
            return
        minute = int(time.time() // 60)
        at, n = self._rate.get(link, (minute, 0))
        n = n + 1 if at == minute else 1
        self._rate[link] = (minute, n)
        if n > limit:
            raise GatewayError(
                429,
                "rate_limited",
                f"link {link} is limited to {limit} transfers a minute",
                headers={"Retry-After": str(60 - int(time.time()) % 60)},
            )

    # --- outbound ----------------------------------------------------------------------------

    async def post_transfer(self, request: web.Request) -> web.Response:
        tid = "tr-" + secrets.token_hex(12)
        try:
            caller = await self.identify(request, tid, "transfer.rejected")
        except GatewayError as exc:
            return exc.response()
        caller_breaker = self.board.get("caller", caller)
        try:
            engine = self.engine()
            body = await read_body(request, self.config.max_payload_bytes + _FRAME_OVERHEAD)
            ctype = request.content_type
            item = parse_transfer(ctype, dict(request.headers), body, self.node, set(engine.nodes))
            if item.size > self.config.max_payload_bytes:
                raise InputError(
                    413,
                    "payload_too_large",
                    f"payload of {item.size} bytes exceeds {self.config.max_payload_bytes}",
                    "payload",
                )
            return await self._transfer(engine, item, tid, caller)
        except (InputError, GatewayError) as exc:
            audited = isinstance(exc, GatewayError) and exc.audited
            if not audited:
                await self.record_refusal(caller, tid, exc, "transfer.rejected")
            if isinstance(exc, InputError) or exc.code in _PROBING:
                # Malformed or forbidden requests in a burst are probing (B8).
                await self.on_trip(caller_breaker.record_denied(time.time()), caller)
            if isinstance(exc, InputError):
                return GatewayError(exc.status, exc.code, exc.message, exc.field).response()
            return exc.response()

    async def _transfer(
        self, engine: PolicyEngine, item: TransferInput, tid: str, caller: str
    ) -> web.Response:
        size = item.size if item.records is None else 0
        records_bytes = None
        if item.records is not None:
            records_bytes = json.dumps(item.records, separators=(",", ":")).encode()
            size = len(records_bytes)
            if size > self.config.max_payload_bytes:
                raise InputError(
                    413,
                    "payload_too_large",
                    f"records of {size} bytes exceed {self.config.max_payload_bytes}",
                    "records",
                )
        decision = engine.decide(
            TransferRequest(
                item.source,
                item.destination,
                item.classification,
                frozenset(item.categories),
                item.purpose,
                size,
                frozenset(item.certifications),
            )
        )
        now = time.time()
        settings = self.settings_for(engine, decision)
        link = self.board.get("link", item.link, settings)
        caller_b = self.board.get("caller", caller, settings)
        for b in (caller_b, link):
            refusal = b.admit(now)
            if refusal is not None:
                raise self.refusal_error(refusal)
        probing = [b for b in (caller_b, link) if b.probing]
        base: dict[str, Any] = {
            "actor": caller,
            "subject": tid,
            "ruleIds": _rules(decision),
            "policyVersion": decision.bundle_version,
            "classification": item.classification,
        }
        original = records_bytes if records_bytes is not None else item.data or b""
        original_digest = sm3(original).hex()
        requested = EventFields(
            **base,
            action="transfer.requested",
            payloadDigest=original_digest,
            detail=_text(
                {
                    "link": item.link,
                    "destination": item.destination,
                    "categories": list(item.categories),
                    "purpose": item.purpose,
                    "size": size,
                }
            )[:1024],
        )
        if decision.verdict == Verdict.DENY:
            await self.record(
                [
                    requested,
                    EventFields(
                        **base,
                        action="transfer.denied",
                        decision="deny",
                        detail=decision.reason[:1024],
                    ),
                ]
            )
            trips = [link.record_denied(now), caller_b.record_denied(now)]
            for b in probing:
                trips.append(b.finish_probe(False, now))
            for trip in trips:
                await self.on_trip(trip, caller)
            denied = GatewayError(
                403, "denied", decision.reason, id=tid, matched=[str(m) for m in decision.matched]
            )
            denied.audited = True  # requested + denied are recorded, breakers counted
            raise denied
        try:
            self.check_rate(item.link, decision.max_transfers_per_minute)
            plaintext, kind, protected_fields = self._desensitise(item, decision, records_bytes)
            core: dict[str, Any] = {
                "v": 1,
                "id": tid,
                "source": item.source,
                "destination": item.destination,
                "link": item.link,
                "classification": item.classification,
                "categories": sorted(item.categories),
                "purpose": item.purpose,
                "dataset": item.dataset,
                "payloadKind": kind,
                # Unchanged by desensitisation (the usual case): the digest is already known.
                "payloadDigest": (
                    original_digest if plaintext == original else sm3(plaintext).hex()
                ),
                "size": len(plaintext),
                "desensitised": protected_fields,
                "decision": {
                    "verdict": decision.verdict.value,
                    "channel": decision.channel,
                    "rules": _rules(decision),
                    "bundleVersion": decision.bundle_version,
                    "bundleHash": decision.bundle_hash,
                },
                "approvalGroups": [a.to_dict() for a in decision.approvals],
                "createdAt": _now_iso(),
                "salt": secrets.token_hex(16),
            }
            core = {k: v for k, v in core.items() if v is not None}
            peer = self.peer_key(item.destination)
            mine = self._key()
            core["senderKeyId"], core["recipientKeyId"] = mine.key_id, peer.key_id
            core_bytes, sealed = protect(core, plaintext, mine, peer)
        except GatewayError:
            for b in probing:
                b.probing = False
            raise
        verdict = "transfer.allowed" if decision.verdict == Verdict.ALLOW else "transfer.queued"
        protected = EventFields(
            **base,
            action="transfer.protected",
            payloadDigest=core["payloadDigest"],
            detail=_text(
                {
                    "encryption": "SM4-GCM",
                    "keyAgreement": "SM2-static-DH+SM3-KDF",
                    "signature": "SM2",
                    "desensitised": protected_fields,
                }
            )[:1024],
        )
        decided = EventFields(
            **base, action=verdict, decision=decision.verdict.value, detail=decision.reason[:1024]
        )
        try:
            await self.record([requested, decided, protected])
        except GatewayError:
            for b in probing:
                b.probing = False
            raise
        if decision.verdict == Verdict.REVIEW:
            return await self._hold(tid, item, core, core_bytes, sealed, decision, caller, probing)
        frame = encode_frame(core_bytes, [], sealed)
        return await self._deliver(tid, item.destination, item.link, frame, core, caller, probing)

    def _desensitise(
        self, item: TransferInput, decision: Decision, records_bytes: bytes | None
    ) -> tuple[bytes, str, list[dict[str, str]]]:
        fields = [{"field": p.field, "method": p.method} for p in decision.desensitisation]
        if item.records is None:
            if decision.desensitisation:
                raise GatewayError(
                    422,
                    "opaque_payload",
                    "the policy desensitises fields "
                    + ", ".join(f["field"] for f in fields)
                    + "; send records (JSON), not bytes",
                    "payloadBase64",
                )
            return item.data or b"", "bytes", fields
        if not decision.desensitisation:
            assert records_bytes is not None
            return records_bytes, "records", fields
        key_for = self.pseudonym_key(item.link)
        try:
            out = [desensitise(r, decision.desensitisation, key_for) for r in item.records]
        except ValueError as exc:
            raise GatewayError(422, "desensitisation_failed", str(exc), "records") from None
        return json.dumps(out, separators=(",", ":")).encode(), "records", fields

    async def _deliver(
        self,
        tid: str,
        destination: str,
        link_name: str,
        frame: bytes,
        core: dict[str, Any],
        actor: str,
        probing: list[Any],
    ) -> web.Response:
        url = self.config.peers.get(destination)
        outcome = (
            await self.peers.deliver(url, frame)
            if url
            else Outcome(0, {"code": "no_route", "message": f"no gateway URL for {destination}"})
        )
        now = time.time()
        link = self.board.get("link", link_name)
        base = {
            "actor": actor,
            "subject": tid,
            "classification": core["classification"],
            "payloadDigest": core["payloadDigest"],
        }
        if outcome.delivered:
            await self.record(
                [
                    EventFields(
                        **base,
                        action="transfer.delivered",
                        decision="delivered",
                        detail=_text({"destination": destination, "receipt": outcome.body})[:1024],
                    )
                ]
            )
            trips = [link.record_transfer(now, core["size"])]
            caller = self.board.breakers.get(("caller", actor))
            if caller is not None:
                caller.record_transfer(now, core["size"])
            for b in probing:
                b.finish_probe(True, now)
            for trip in trips:
                await self.on_trip(trip, actor)
            return _json_response(
                {
                    "id": tid,
                    "state": "Delivered",
                    "destination": destination,
                    "payloadDigest": core["payloadDigest"],
                    "receipt": outcome.body,
                },
                status=201,
            )
        for b in probing:
            await self.on_trip(b.finish_probe(False, now), actor)
        await self.record(
            [
                EventFields(
                    **base,
                    action="transfer.failed",
                    decision="undelivered",
                    detail=json.dumps(
                        {
                            "destination": destination,
                            "status": outcome.status,
                            "answer": outcome.body,
                        }
                    )[:1024],
                )
            ]
        )
        status = 504 if outcome.status == 0 else 502
        code = "destination_unreachable" if outcome.status == 0 else "destination_refused"
        raise GatewayError(
            status,
            code,
            f"{destination}: {outcome.body.get('message', '')}",
            id=tid,
            destinationStatus=outcome.status,
            destinationCode=outcome.body.get("code"),
        )

    async def _hold(
        self,
        tid: str,
        item: TransferInput,
        core: dict[str, Any],
        core_bytes: bytes,
        sealed: bytes,
        decision: Decision,
        caller: str,
        probing: list[Any],
    ) -> web.Response:
        groups = core["approvalGroups"]
        timeout = min((_timeout_seconds(g["timeout"]) for g in groups), default=72 * 3600.0)
        meta = {
            "link": item.link,
            "source": item.source,
            "destination": item.destination,
            "classification": item.classification,
            "categories": list(item.categories),
            "purpose": item.purpose,
            "caller": caller,
            "payloadDigest": core["payloadDigest"],
            "size": core["size"],
            "reason": decision.reason,
            "groups": groups,
        }
        await self.reviews.call(
            lambda s: s.add(tid, time.time() + timeout, meta, core_bytes, sealed)
        )
        self.board.get("link", item.link).in_review += 1
        for b in probing:
            b.finish_probe(True, time.time())
        return _json_response(
            {
                "id": tid,
                "state": HELD,
                "channel": "review",
                "reason": decision.reason,
                "payloadDigest": core["payloadDigest"],
                "approvals": progress(groups, []).summary,
            },
            status=202,
        )

    # --- review ------------------------------------------------------------------------------

    async def list_reviews(self, request: web.Request) -> web.Response:
        state = request.query.get("state")
        items = await self.reviews.call(lambda s: s.items(state))
        return _json_response({"items": [h.view() for h in items]})

    async def get_review(self, request: web.Request) -> web.Response:
        tid = request.match_info["id"]
        held = await self.reviews.call(lambda s: s.get(tid))
        if held is None:
            return GatewayError(404, "not_found", f"no held transfer {tid}").response()
        return _json_response(held.view())

    async def post_approval(self, request: web.Request) -> web.Response:
        tid = request.match_info["id"]
        actor = "approver"
        try:
            if request.content_type != "application/json":
                raise GatewayError(
                    415, "unsupported_media_type", "approvals are JSON", "Content-Type"
                )
            try:
                approval = json.loads(await read_body(request, 64 * 1024))
            except ValueError:
                raise GatewayError(400, "malformed_json", "body is not JSON", "body") from None
            if isinstance(approval, dict) and isinstance(approval.get("approver"), str):
                actor = approval["approver"][:253] or actor
            held = await self.reviews.call(lambda s: s.get(tid))
            if held is None:
                raise GatewayError(404, "not_found", f"no held transfer {tid}")
            if held.state == EXPIRED:
                raise GatewayError(410, "expired", f"transfer {tid} expired unapproved")
            if held.state != HELD:
                raise GatewayError(409, "not_held", f"transfer {tid} is {held.state}")
            if time.time() >= held.expires:
                raise GatewayError(410, "expired", f"transfer {tid} expired unapproved")
            try:
                checked = verify_approval(
                    approval, tid, held.meta["payloadDigest"], held.meta["groups"], self.approvers
                )
            except ApprovalError as exc:
                if exc.code == "bad_approval_signature":
                    link = self.board.get("link", held.meta["link"])
                    await self.on_trip(link.record_invalid_signature(time.time()), actor)
                raise GatewayError(exc.status, exc.code, exc.message, exc.field) from None
            if any(a["approver"] == checked["approver"] for a in held.approvals):
                raise GatewayError(
                    409,
                    "duplicate_approval",
                    f"{checked['approver']} already decided on {tid}",
                    "approver",
                )
        except GatewayError as exc:
            await self.record_refusal(actor, tid, exc, "transfer.approval_refused")
            return exc.response()
        action = "transfer.approved" if checked["decision"] == "approve" else "transfer.vetoed"
        try:
            await self.record(
                [
                    EventFields(
                        actor=checked["approver"],
                        action=action,
                        subject=tid,
                        decision=checked["decision"],
                        classification=held.meta["classification"],
                        payloadDigest=held.meta["payloadDigest"],
                        detail=json.dumps(
                            {
                                "keyId": checked["keyId"],
                                "signature": checked["signature"],
                                "signedAt": checked["signedAt"],
                            }
                        )[:1024],
                    )
                ]
            )
        except GatewayError as exc:
            return exc.response()
        approvals = [*held.approvals, checked]
        await self.reviews.call(lambda s: s.set_approvals(tid, approvals))
        p = progress(held.meta["groups"], approvals)
        if p.failed:
            await self._finish(tid, held.meta, REJECTED, p.failed, checked["approver"])
            return _json_response(
                {"id": tid, "state": REJECTED, "reason": p.failed, "groups": p.summary}
            )
        if not p.met:
            return _json_response({"id": tid, "state": HELD, "groups": p.summary})
        try:
            return await self.release(tid)
        except GatewayError as exc:
            return exc.response()

    async def _finish(
        self, tid: str, meta: dict[str, Any], state: str, reason: str, actor: str
    ) -> None:
        action = {REJECTED: "transfer.rejected", EXPIRED: "transfer.expired"}.get(state)
        if action:
            await self.record(
                [
                    EventFields(
                        actor=actor,
                        action=action,
                        subject=tid,
                        decision=state.lower(),
                        detail=reason[:1024],
                        classification=meta["classification"],
                    )
                ]
            )
        await self.reviews.call(lambda s: s.finish(tid, state, reason))
        link = self.board.get("link", meta["link"])
        link.in_review = max(0, link.in_review - 1)

    async def release(self, tid: str) -> web.Response:
        """Deliver a held transfer whose every approval group is met."""
        if tid in self._delivering:
            raise GatewayError(409, "in_flight", f"transfer {tid} is being delivered")
        self._delivering.add(tid)
        try:
            held = await self.reviews.call(lambda s: s.get(tid))
            assert held is not None and held.core is not None and held.sealed is not None
            frame = encode_frame(held.core, held.approvals, held.sealed)
            core = json.loads(held.core)
            response = await self._deliver(
                tid, held.meta["destination"], held.meta["link"], frame, core, "gateway", []
            )
            await self._finish(tid, held.meta, DELIVERED, "every approval group met", "gateway")
            return response
        finally:
            self._delivering.discard(tid)

    async def sweep(self) -> None:
        """Expire held transfers past their timeout; retry approved ones that failed."""
        while True:
            await asyncio.sleep(self.config.review_sweep_seconds)
            try:
                due = await self.reviews.call(lambda s: s.due(time.time()))
                for tid in due:
                    held = await self.reviews.call(lambda s, t=tid: s.get(t))  # type: ignore[misc]
                    if held is not None and held.state == HELD:
                        await self._finish(
                            tid, held.meta, EXPIRED, "approval timeout passed", "gateway"
                        )
                for held in await self.reviews.call(lambda s: s.items(HELD)):
                    if progress(held.meta["groups"], held.approvals).met:
                        try:
                            await self.release(held.id)
                        except GatewayError as exc:
                            log.warning(
                                "approved transfer %s still undelivered: %s", held.id, exc.message
                            )
            except Exception:
                log.exception("review sweep failed")

    # --- links -------------------------------------------------------------------------------

    async def list_links(self, request: web.Request) -> web.Response:
        return _json_response(
            {"node": self.node, "items": [b.status() for b in self.board.breakers.values()]}
        )

    async def reset_link(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        kind = request.query.get("kind", "link")
        try:
            actor = await self.identify(request, f"{kind}/{name}", "breaker.reset_refused")
        except GatewayError as exc:
            return exc.response()
        b = self.board.breakers.get((kind, name))
        if b is None:
            return GatewayError(404, "not_found", f"no {kind} {name} on this gateway").response()
        was = b.state
        b.reset()
        self.board.save()
        self.report_now.set()
        try:
            await self.record(
                [
                    EventFields(
                        actor=actor,
                        action="breaker.reset",
                        subject=f"{kind}/{name}",
                        decision="reset",
                        detail=f"manual reset from {was}",
                    )
                ]
            )
        except GatewayError as exc:
            return exc.response()
        return _json_response(b.status())

    # --- inbox -------------------------------------------------------------------------------

    # Received payloads are decrypted data: only identified callers read them, and each read
    # of one is an audit event.

    async def list_inbox(self, request: web.Request) -> web.Response:
        try:
            await self.identify(request, "inbox", "inbox.read_refused")
        except GatewayError as exc:
            return exc.response()
        return _json_response({"items": await self.inbox.call(lambda s: s.list_ids())})

    async def get_inbox(self, request: web.Request) -> web.Response:
        tid = request.match_info["id"]
        try:
            caller = await self.identify(request, tid[:253], "inbox.read_refused")
            item = await self.inbox.call(lambda s: s.get(tid))
            if item is None:
                raise GatewayError(404, "not_found", f"nothing received as {tid}")
            await self.record(
                [
                    EventFields(
                        actor=caller,
                        action="inbox.read",
                        subject=tid,
                        decision="read",
                        classification=item["metadata"].get("classification"),
                        payloadDigest=item["metadata"].get("payloadDigest"),
                    )
                ]
            )
        except GatewayError as exc:
            return exc.response()
        return _json_response(item)

    # --- inbound -----------------------------------------------------------------------------

    async def post_inbound(self, request: web.Request) -> web.Response:
        """One frame, signed on its own (peers without batching, and tests)."""
        sender = request.headers.get(auth.H_NODE, "?")[:253] or "?"
        try:
            body = await read_body(request, self.config.max_payload_bytes + _FRAME_OVERHEAD)
            if request.content_type != FRAME_TYPE:
                raise GatewayError(
                    415, "unsupported_media_type", "expected a transfer frame", "Content-Type"
                )
            engine = self.engine()
            node, key = await self._authenticate_sender(request, body, engine, sender)
            evidence = self._evidence(request, sm3(body).hex())
            status, answer = (await self._receive(engine, node, key, [body], [evidence]))[0]
            return _json_response(answer, status=status)
        except InputError as exc:
            err = GatewayError(exc.status, exc.code, exc.message, exc.field)
        except GatewayError as exc:
            err = exc
        await self.record_refusal(
            sender, "inbound-" + secrets.token_hex(8), err, "transfer.rejected"
        )
        return err.response()

    async def post_inbound_batch(self, request: web.Request) -> web.Response:
        """Frames under one signature (:mod:`trustspace_agent.batchwire`): one answer each,
        ``{"results": [{"status", "body"}, ...]}`` in the order of the manifest."""
        sender = request.headers.get(auth.H_NODE, "?")[:253] or "?"
        try:
            limit = max(self.config.max_payload_bytes, batchwire.MAX_BYTES) + _FRAME_OVERHEAD
            body = await read_body(request, limit)
            if request.content_type != batchwire.BATCH_TYPE:
                raise GatewayError(
                    415, "unsupported_media_type", "expected a transfer batch", "Content-Type"
                )
            engine = self.engine()
            try:
                manifest, _ = batchwire.split_manifest(body)
            except EnvelopeError as exc:
                raise GatewayError(400, "malformed_batch", str(exc), exc.field) from None
            node, key = await self._authenticate_sender(request, manifest, engine, sender)
            try:
                batch = batchwire.open_batch(body)
            except EnvelopeError as exc:
                raise GatewayError(400, "malformed_batch", str(exc), exc.field) from None
            base = self._evidence(request, sm3(manifest).hex())
            evidence = [
                {**base, "batchIndex": i, "frameDigest": d} for i, d in enumerate(batch.digests)
            ]
            results = await self._receive(engine, node, key, batch.frames, evidence, manifest)
        except InputError as exc:
            err = GatewayError(exc.status, exc.code, exc.message, exc.field)
        except GatewayError as exc:
            err = exc
        else:
            return _json_response(
                {"results": [{"status": s, "body": b} for s, b in results]}, status=200
            )
        await self.record_refusal(
            sender, "inbound-" + secrets.token_hex(8), err, "transfer.rejected"
        )
        return err.response()

    @staticmethod
    def _evidence(request: web.Request, signed_digest: str) -> dict[str, Any]:
        h = request.headers
        return {
            "keyId": h[auth.H_KEY_ID],
            "timestamp": h[auth.H_TIMESTAMP],
            "nonce": h[auth.H_NONCE],
            "signature": h[auth.H_SIGNATURE],
            "bodyDigest": signed_digest,
            "path": request.path_qs,
        }

    async def _authenticate_sender(
        self, request: web.Request, signed: bytes, engine: PolicyEngine, sender: str
    ) -> tuple[str, SM2PublicKey]:
        try:
            return self._authenticate(request, signed)
        except GatewayError as exc:
            if exc.code == "bad_signature" and sender in engine.nodes:
                now = time.time()
                for kind, name in (("link", f"{sender}-to-{self.node}"), ("caller", sender)):
                    await self.on_trip(
                        self.board.get(kind, name).record_invalid_signature(now), sender
                    )
            raise

    def _authenticate(self, request: web.Request, signed: bytes) -> tuple[str, SM2PublicKey]:
        """The sender and its key, from the SM2 request signature over ``signed`` (the body,
        or a batch's manifest)."""
        h = request.headers
        node, key_id = h.get(auth.H_NODE), h.get(auth.H_KEY_ID)
        ts, nonce, sig = h.get(auth.H_TIMESTAMP), h.get(auth.H_NONCE), h.get(auth.H_SIGNATURE)
        if not (node and key_id and ts and nonce and sig):
            raise GatewayError(401, "missing_auth", "request is not signed (X-Trustspace-*)")
        now = time.time()
        if not ts.isdigit() or abs(now - int(ts)) > auth.MAX_SKEW_SECONDS:
            raise GatewayError(401, "stale_timestamp", "request timestamp is over 5 minutes off")
        try:
            key = self._node_key((node, key_id))
        except TrustError as exc:
            raise GatewayError(403, exc.code, exc.message) from None
        try:
            key.verify(
                auth.signing_input("POST", request.path_qs, ts, nonce, signed),
                base64.b64decode(sig, validate=True),
            )
        except (InvalidSignature, CryptoError, binascii.Error, ValueError):
            raise GatewayError(
                401,
                "bad_signature",
                "SM2 request signature does not verify",
                "X-Trustspace-Signature",
            ) from None
        if not self.nonces.check_and_add(f"{node}:{nonce}", now):
            raise GatewayError(401, "replayed_nonce", "this request was already received")
        return node, key

    async def _receive(
        self,
        engine: PolicyEngine,
        node: str,
        sender_key: SM2PublicKey,
        frames: list[bytes],
        evidence: list[dict[str, Any]],
        manifest: bytes | None = None,
    ) -> list[tuple[int, dict[str, Any]]]:
        """Check, audit and store authenticated frames; (status, answer) for each. The
        ``transfer.received`` events of all accepted frames are one durable append, made
        before anything is stored or answered."""
        now = time.time()
        results: list[tuple[int, dict[str, Any]] | None] = [None] * len(frames)
        accepted: list[tuple[int, _Accepted]] = []
        for i, raw in enumerate(frames):
            try:
                accepted.append((i, await self._accept(engine, raw, node, sender_key, now)))
            except GatewayError as exc:
                subject = exc.extra.get("id") or "inbound-" + secrets.token_hex(8)
                await self.record_refusal(node, subject, exc, "transfer.rejected")
                results[i] = (exc.status, exc.body())
        if accepted:
            try:
                await self.record(
                    [
                        EventFields(
                            actor=node,
                            action="transfer.received",
                            subject=a.tid,
                            decision=a.decision.verdict.value,
                            ruleIds=_rules(a.decision),
                            policyVersion=a.decision.bundle_version,
                            classification=str(a.frame.core["classification"]),
                            payloadDigest=str(a.frame.core["payloadDigest"]),
                            detail=_text(
                                {
                                    "link": a.link_name,
                                    "approvals": len(a.frame.approvals),
                                    "signature": evidence[i]["signature"][:120],
                                    **(
                                        {"batchIndex": i, "manifest": evidence[i]["bodyDigest"]}
                                        if manifest is not None
                                        else {}
                                    ),
                                }
                            )[:1024],
                        )
                        for i, a in accepted
                    ]
                )
            except GatewayError as exc:
                for i, a in accepted:
                    await self.record_refusal(node, a.tid, exc, "transfer.rejected")
                    results[i] = (exc.status, exc.body())
                accepted = []
        if accepted:
            rows = [
                (a.frame.core, a.frame.core_bytes, a.frame.approvals, evidence[i], a.plaintext)
                for i, a in accepted
            ]
            fresh = await self.inbox.call(lambda s: s.add_many(rows, manifest))
            received_at = _now_iso()
            for (i, a), new in zip(accepted, fresh, strict=True):
                for b in a.probing:
                    b.finish_probe(True, now)
                if new:
                    await self.on_trip(a.link.record_transfer(now, len(a.plaintext)), node)
                results[i] = (
                    201 if new else 200,
                    {
                        "id": a.tid,
                        "receivedBy": self.node,
                        "receivedAt": received_at,
                        "payloadDigest": a.frame.core["payloadDigest"],
                        "duplicate": not new,
                    },
                )
        return [r for r in results if r is not None]

    async def _accept(
        self, engine: PolicyEngine, raw: bytes, node: str, sender_key: SM2PublicKey, now: float
    ) -> _Accepted:
        """One frame from an authenticated ``node``: decide again here, check protections,
        approvals and breakers, decrypt; GatewayError (breakers counted) if anything is off."""
        try:
            frame = decode_frame(raw)
        except EnvelopeError as exc:
            raise GatewayError(400, "malformed_frame", str(exc), exc.field) from None
        core = frame.core
        tid = str(core.get("id", ""))
        if not tid.startswith("tr-") or len(tid) > 64:
            raise GatewayError(400, "malformed_frame", "frame has no transfer id", "core.id")
        if core.get("source") != node:
            raise GatewayError(
                403,
                "node_mismatch",
                f"{node} signed a frame from {core.get('source')!r}",
                "core.source",
                id=tid,
            )
        if core.get("destination") != self.node:
            raise GatewayError(
                421,
                "wrong_destination",
                f"frame is for {core.get('destination')!r}, this is {self.node}",
                "core.destination",
                id=tid,
            )
        link_name = str(core.get("link", f"{node}-to-{self.node}"))
        try:
            decision = engine.decide(
                TransferRequest.of(
                    node,
                    self.node,
                    str(core.get("classification")),
                    core.get("categories", []),
                    payload_size=int(core.get("size", 0)),
                    recipient_certifications=self.config.certifications,
                )
            )
        except (ValueError, TypeError):
            raise GatewayError(
                400,
                "malformed_frame",
                "bad classification or categories",
                "core.classification",
                id=tid,
            ) from None
        settings = self.settings_for(engine, decision)
        link = self.board.get("link", link_name, settings)
        caller = self.board.get("caller", node, settings)
        for b in (caller, link):
            refusal = b.admit(now)
            if refusal is not None:
                err = self.refusal_error(refusal)
                err.extra["id"] = tid
                raise err
        probing = [b for b in (caller, link) if b.probing]
        try:
            plaintext = self._inbound_checks(frame, decision, tid, sender_key)
        except GatewayError as exc:
            for b in probing:
                await self.on_trip(b.finish_probe(False, now), node)
            if exc.code in ("inbound_denied", "approvals_missing", "protections_missing"):
                await self.on_trip(link.record_denied(now), node)
            if exc.code in ("bad_approval_signature", "decryption_failed"):
                await self.on_trip(link.record_invalid_signature(now), node)
            raise
        return _Accepted(tid, frame, decision, link_name, link, probing, plaintext)

    def _inbound_checks(
        self, frame: Any, decision: Decision, tid: str, sender_key: SM2PublicKey
    ) -> bytes:
        core = frame.core
        if decision.verdict == Verdict.DENY:
            raise GatewayError(403, "inbound_denied", decision.reason, id=tid)
        required = {(p.field, p.method) for p in decision.desensitisation}
        applied = {
            (d.get("field"), d.get("method"))
            for d in core.get("desensitised", [])
            if isinstance(d, dict)
        }
        missing = sorted(f for f, _ in required - applied)
        if missing:
            raise GatewayError(
                403,
                "protections_missing",
                "not desensitised as required: " + ", ".join(missing),
                id=tid,
            )
        if decision.verdict == Verdict.REVIEW:
            groups = [a.to_dict() for a in decision.approvals]
            checked = []
            for approval in frame.approvals:
                try:
                    checked.append(
                        verify_approval(
                            approval, tid, str(core["payloadDigest"]), groups, self.approvers
                        )
                    )
                except ApprovalError as exc:
                    raise GatewayError(
                        exc.status if exc.status != 401 else 403,
                        "bad_approval_signature" if exc.status == 401 else exc.code,
                        exc.message,
                        id=tid,
                    ) from None
            p = progress(groups, checked)
            if not p.met:
                raise GatewayError(
                    403,
                    "approvals_missing",
                    f"review transfer without the approvals its groups need: "
                    f"{json.dumps(p.summary)}"[:1000],
                    id=tid,
                )
        mine = self._key()
        if core.get("recipientKeyId") != mine.key_id:
            raise GatewayError(
                409, "stale_recipient_key", "encrypted for another key of this node", id=tid
            )
        try:
            plaintext = open_sealed(frame, mine, sender_key)
        except (DecryptionError, KeyError) as exc:
            raise GatewayError(400, "decryption_failed", str(exc), id=tid) from None
        if sm3(plaintext).hex() != core.get("payloadDigest"):
            raise GatewayError(400, "digest_mismatch", "payload digest does not match", id=tid)
        return plaintext

    # --- wiring ------------------------------------------------------------------------------

    def add_local_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/transfers", self.post_transfer)
        app.router.add_get("/v1/reviews", self.list_reviews)
        app.router.add_get("/v1/reviews/{id}", self.get_review)
        app.router.add_post("/v1/reviews/{id}/approvals", self.post_approval)
        app.router.add_get("/v1/links", self.list_links)
        app.router.add_post("/v1/links/{name}/reset", self.reset_link)
        app.router.add_get("/v1/inbox", self.list_inbox)
        app.router.add_get("/v1/inbox/{id}", self.get_inbox)

    def inbound_app(self) -> web.Application:
        async def healthz(request: web.Request) -> web.Response:
            return _json_response({"status": "ok", "node": self.node})

        limit = max(self.config.max_payload_bytes, batchwire.MAX_BYTES) + _FRAME_OVERHEAD
        app = web.Application(client_max_size=limit)
        app.router.add_post("/v1/inbound", self.post_inbound)
        app.router.add_post(batchwire.BATCH_PATH, self.post_inbound_batch)
        app.router.add_get("/healthz", healthz)
        return app
