"""The security gateway (B2) on every node: decide, protect, audit, deliver, receive.

Outbound (``POST /v1/transfers`` on the local API, :mod:`.outbound`)::

    parse -> decide (PolicyEngine, signed bundle) -> breakers -> desensitise (B6)
      -> SM4-GCM for the destination (B3) -> audit requested/decision/protected (fsynced)
      -> allow: deliver over HTTPS, SM2-signed -> audit delivered (:mod:`.dispatch`)
      -> review: hold here, encrypted (B5, B7) -> audit queued (:mod:`.reviews`)

Nothing moves before its audit events are durable: a full audit store answers 503 and
nothing is delivered (B4). Inbound (``POST /v1/inbound`` on the HTTPS port, :mod:`.inbound`):
verify the sender's SM2 signature against the trust bundle, decide again with this node's own
certifications, check the signed approvals of a reviewed transfer, decrypt, audit, store.

This module holds :class:`Gateway`, the state those steps share; :mod:`.routes` wires them
to aiohttp.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

from aiohttp import web

from trustspace import clock
from trustspace.audit import auth
from trustspace.audit.event import EventFields
from trustspace.audit.keyfile import KeyFile
from trustspace.crypto import SM2PublicKey
from trustspace.onethread import OneThread
from trustspace.policy import Decision, FieldProtection, PolicyEngine, derive_link_key
from trustspace.refusal import HttpRefusal
from trustspace.trust import TrustBundleFile, TrustError
from trustspace_agent.auditq import GroupAppender
from trustspace_agent.config import AgentConfig
from trustspace_agent.gateway.answers import GatewayError
from trustspace_agent.gateway.approvals import ApproverKeys
from trustspace_agent.gateway.breaker import BreakerBoard, BreakerSettings, Trip
from trustspace_agent.gateway.callers import (
    CALLER_HEADER,
    UNAUTHENTICATED,
    CallerRefused,
    Callers,
)
from trustspace_agent.gateway.delivery import PeerClient
from trustspace_agent.gateway.held_store import ReviewStore
from trustspace_agent.gateway.inbox_store import Inbox
from trustspace_agent.gateway.throttle import Throttled, TtlCache
from trustspace_agent.gateway_config import GatewayConfig
from trustspace_agent.policyfile import PolicyFile
from trustspace_agent.store import AuditBackpressure

log = logging.getLogger(__name__)

#: Room for a frame's header around the largest payload a caller may send.
FRAME_OVERHEAD = 512 * 1024


class Gateway:
    """What every step of the gateway shares: configuration, keys, trust and policy,
    stores, breakers and the audit appender; the steps live beside it in this package
    (outbound, dispatch, reviews, inbound, inbox, links) and take it as their first argument."""

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
        self.delivering: set[str] = set()
        """Held transfers being released now: each is delivered once at a time."""
        self.report_now = asyncio.Event()
        """Set on a trip or reset: the link reporter sends at once."""
        self.own_key = Throttled(keys.get)
        self.trusted = Throttled(self.trust.current)
        self._engine = Throttled(self.policy.current)
        self.node_key: TtlCache[tuple[str, str], SM2PublicKey] = TtlCache(
            lambda k: self.trusted().node_key(k[0], k[1], clock.now())
        )
        self._peer_key: TtlCache[str, SM2PublicKey] = TtlCache(self._active_peer_key)
        self._settings: dict[tuple[str, tuple[str, ...]], BreakerSettings] = {}

    async def start(self) -> None:
        await self.peers.start()
        held = await self.reviews.call(lambda s: s.count_held())
        for link, n in held.items():
            self.board.get("link", link).in_review = n

    async def close(self) -> None:
        await self.peers.close()
        self.reviews.close()
        self.inbox.close()

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
        exc: HttpRefusal,
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
        """The verified caller (see :mod:`trustspace_agent.gateway.callers`); a refusal is audited
        under ``unauthenticated``, with what the caller claimed and where it came from."""
        try:
            return self.callers.identify(request.headers, request.remote)
        except CallerRefused as refused:
            # Unauthenticated calls touch no breaker: naming one would let anyone trip it.
            await self.record_refusal(
                UNAUTHENTICATED,
                subject,
                refused,
                action,
                claimedCaller=request.headers.get(CALLER_HEADER),
                remote=request.remote,
            )
            refused.audited = True
            raise

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
        now = clock.now()
        try:
            trusted = self.trusted().node(node)
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
