"""Wires the agent together: store thread, batch sealer, shipper, heartbeat, local API."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import time

from aiohttp import web

from trustspace import __version__
from trustspace.audit.keyfile import KeyFile
from trustspace.gctuning import settle_heap
from trustspace.onethread import OneThread
from trustspace_agent.api import Appender, build_app
from trustspace_agent.bundlereport import TrustFileHash
from trustspace_agent.config import AgentConfig
from trustspace_agent.gateway.core import Gateway
from trustspace_agent.gateway.service import gateway_tasks, start_gateway, stop_gateway
from trustspace_agent.metrics import AgentMetrics
from trustspace_agent.shipper import HubClient, Rejected, Shipper
from trustspace_agent.store import AuditStore

log = logging.getLogger(__name__)


class Sealer:
    """Seals batches of up to N events, or whatever is pending after T ms."""

    def __init__(
        self,
        config: AgentConfig,
        store: OneThread[AuditStore],
        keys: KeyFile,
        sealed: asyncio.Event,
    ) -> None:
        self._config = config
        self._store = store
        self._keys = keys
        self._sealed = sealed
        self._wake = asyncio.Event()
        self._pending = 0

    def notify(self, count: int) -> None:
        self._pending += count
        if self._pending >= self._config.batch_max_events:
            self._wake.set()

    async def run(self) -> None:
        delay = self._config.batch_max_delay_ms / 1000
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            self._wake.clear()
            self._pending = 0
            key = self._keys.get()
            n = self._config.batch_max_events
            while await self._store.call(functools.partial(AuditStore.seal, key=key, max_events=n)):
                self._sealed.set()


async def heartbeat(
    config: AgentConfig,
    store: OneThread[AuditStore],
    keys: KeyFile,
    hub: HubClient,
    gateway: Gateway | None = None,
) -> None:
    import json

    trust_hash = TrustFileHash(config.gateway.trust_bundle_file if config.gateway else None)
    while True:
        last, acked, used = await store.call(lambda s: (s.last_seq, s.acked_seq, s.used_bytes()))
        full = used >= config.store_max_bytes
        report: dict[str, object] = {
            "node": config.node,
            "keyId": keys.get().key_id,
            "policyVersion": config.policy_version,
            "agentVersion": __version__,
            "lastSeq": last,
            "ackedSeq": acked,
            "backpressure": full,
            "bufferUsedBytes": used,
            "bufferMaxBytes": config.store_max_bytes,
            "sentAt": int(time.time()),
        }
        if (trust := trust_hash.current()) is not None:
            report["trustBundleHash"] = trust
        engine = gateway.policy.current() if gateway is not None else None
        if engine is not None:
            # The hub compares this with the bundle it published: PolicySynced.
            bundle = engine.bundle
            report["policyVersion"] = bundle.version
            report["policyBundle"] = {"version": bundle.version, "hash": bundle.hash}
        body = json.dumps(report).encode()
        try:
            await hub.request("POST", "/v1/heartbeat", body)
        except (Rejected, OSError, TimeoutError, Exception) as exc:  # never kill the agent
            log.warning("heartbeat failed: %s", exc)
        await asyncio.sleep(config.heartbeat_seconds)


async def run_agent(config: AgentConfig) -> None:
    keys = KeyFile(config.key_file)
    store = OneThread(
        AuditStore(config.store_path, config.node, config.store_max_bytes), "audit-store"
    )
    metrics = AgentMetrics()
    sealed = asyncio.Event()
    sealer = Sealer(config, store, keys, sealed)
    appender = Appender(store, metrics, sealer.notify)
    app = build_app(appender, store, metrics)
    gateway, inbound = await start_gateway(config, keys, appender, app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.listen_host, config.listen_port)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with HubClient(config, keys) as hub:
        shipper = Shipper(config, store, hub, metrics, sealed)
        tasks: list[asyncio.Task[object]] = [
            asyncio.create_task(sealer.run(), name="sealer"),
            asyncio.create_task(shipper.run(), name="shipper"),
            asyncio.create_task(heartbeat(config, store, keys, hub, gateway), name="heartbeat"),
            *gateway_tasks(config, gateway, hub),
        ]
        log.info(
            "agent for node %s listening on %s:%d, key %s",
            config.node,
            config.listen_host,
            config.listen_port,
            keys.get().key_id[:16],
        )
        settle_heap()
        waiter: asyncio.Task[object] = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        failures = [t.exception() for t in done if t is not waiter and not t.cancelled()]
        failure = next((f for f in failures if f is not None), None)
        await stop_gateway(gateway, inbound)
        if failure is not None:
            await runner.cleanup()
            store.close()
            raise failure
    await runner.cleanup()
    store.close()
