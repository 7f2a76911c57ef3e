"""Wires the collector together and runs it until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl

from aiohttp import web

from trustspace.audit.keyfile import KeyFile
from trustspace.crypto import SM2PublicKey
from trustspace.gctuning import settle_heap
from trustspace.onethread import OneThread
from trustspace.trust import TrustBundleFile
from trustspace_operator.collector.checkpointer import Checkpointer
from trustspace_operator.collector.collector_config import CollectorConfig
from trustspace_operator.collector.link_status import LinkReports, make_link_sink
from trustspace_operator.collector.server import Collector
from trustspace_operator.collector.status_reporter import StatusReporter
from trustspace_operator.collector.status_sinks import (
    FileSink,
    KubernetesSink,
    NullSink,
    StatusSink,
)
from trustspace_operator.collector.storage import open_storage

log = logging.getLogger(__name__)


def make_sink(config: CollectorConfig) -> StatusSink:
    if config.status_sink == "file":
        if config.status_file is None:
            raise ValueError("statusSink file needs statusFile")
        return FileSink(config.status_file)
    if config.status_sink == "kubernetes":
        from trustspace.kube import Kube

        # In-cluster credentials, else $KUBECONFIG / ~/.kube/config.
        return KubernetesSink(config.status_namespace or "default", Kube.from_kubeconfig(None))
    return NullSink()


async def run_collector(config: CollectorConfig) -> None:
    hub_keys = KeyFile(config.hub_key_file)
    anchor = (
        SM2PublicKey.from_pem(config.trust_anchor_file.read_bytes())
        if config.trust_anchor_file
        else hub_keys.get().public_key()
    )
    trust = TrustBundleFile(config.trust_bundle_file, anchor)
    db = OneThread(open_storage(config.storage_location), "collector-db")
    checkpointer = Checkpointer(
        db,
        hub_keys,
        config.origin,
        config.key_name,
        config.checkpoint_interval_seconds,
        config.checkpoint_every,
    )
    status = StatusReporter(make_sink(config), config.status_interval_seconds)
    collector = Collector(db, trust, hub_keys, checkpointer, status, config.key_name)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(config.tls_cert_file, config.tls_key_file)
    app = collector.app(config.max_body_bytes)
    LinkReports(collector, make_link_sink(config)).install(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.listen_host, config.listen_port, ssl_context=tls)
    tasks = [
        asyncio.create_task(checkpointer.run(), name="checkpointer"),
        asyncio.create_task(status.run(), name="status"),
    ]
    await site.start()
    log.info("collector listening on %s:%d", config.listen_host, config.listen_port)
    settle_heap()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    with contextlib.suppress(Exception):
        await status.flush(force=True)
    status.close()
    db.close()
