"""``trustspace collector run`` and ``trustspace audit tail|query|verify``."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from trustspace.logs import configure


@click.group()
def collector() -> None:
    """The hub's audit collector."""


@collector.command("run")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="Collector configuration (YAML).",
)
def run(config_path: Path) -> None:
    """Serve until SIGTERM."""
    from trustspace_operator.collector.collector_app import run_collector
    from trustspace_operator.collector.collector_config import CollectorConfig

    configure("collector")
    asyncio.run(run_collector(CollectorConfig.load(config_path)))


def _location(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from trustspace_operator.collector.storage import is_database_url

    if not is_database_url(value) and not Path(value).exists():
        raise click.BadParameter(f"{value}: no such file (or give a postgresql:// URL)")
    return value


_DB = click.option(
    "--db",
    "db_path",
    required=True,
    callback=_location,
    help="The collector's SQLite database file, or its PostgreSQL URL (postgresql://...).",
)


@click.group()
def audit() -> None:
    """Read and verify the audit record the hub holds."""


@audit.command("tail")
@_DB
@click.option("--node", required=True)
@click.option("-n", "count", default=20, show_default=True)
def tail(db_path: str, node: str, count: int) -> None:
    """Print the newest events of NODE (JSON lines)."""
    from trustspace_operator.collector.storage import open_storage

    s = open_storage(db_path)
    last = s.node_state(node).last_seq
    for _, body, _ in s.event_bodies(node, max(1, last - count + 1), last):
        click.echo(body)


@audit.command("query")
@_DB
@click.option("--node", required=True)
@click.option("--from-seq", default=1, show_default=True)
@click.option("--to-seq", type=int, default=None)
@click.option("--action", default=None, help="Only events with this action.")
def query(db_path: str, node: str, from_seq: int, to_seq: int | None, action: str | None) -> None:
    """Print events of NODE in a seq range (JSON lines)."""
    from trustspace_operator.collector.storage import open_storage

    s = open_storage(db_path)
    last = to_seq if to_seq is not None else s.node_state(node).last_seq
    start = from_seq
    while start <= last:  # pages keep memory bounded on a large record
        rows = s.event_bodies(node, start, min(last, start + 9_999))
        for _, body, _ in rows:
            if action is None or json.loads(body).get("action") == action:
                click.echo(body)
        start += 10_000


@audit.command("verify")
@_DB
@click.option(
    "--trust-bundle",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Trust bundle JSON: check batch signatures too.",
)
@click.option(
    "--hub-key",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Hub public key PEM: pins the bundle and checks the checkpoint signature.",
)
def verify(db_path: str, trust_bundle: Path | None, hub_key: Path | None) -> None:
    """Re-check every stored chain, signature, Merkle root and checkpoint. Exit 1 on a problem."""
    from trustspace.crypto import SM2PublicKey
    from trustspace.trust import SignedTrustBundle, TrustBundle, verify_bundle
    from trustspace_operator.collector.storage import open_storage
    from trustspace_operator.collector.verify import dumps, verify_storage

    pinned = SM2PublicKey.from_pem(hub_key.read_bytes()) if hub_key else None
    bundle: TrustBundle | None = None
    if trust_bundle is not None:
        signed = SignedTrustBundle.from_json(trust_bundle.read_bytes())
        bundle = verify_bundle(signed, pinned) if pinned else signed.bundle
    report = verify_storage(open_storage(db_path), bundle, pinned)
    click.echo(dumps(report))
    if report.problem is not None:
        click.echo(f"FAILED: {report.problem}", err=True)
        sys.exit(1)
