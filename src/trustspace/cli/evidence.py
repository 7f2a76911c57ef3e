"""``trustspace evidence register|verify``: one-click evidence and offline verification (B6)."""

from __future__ import annotations

import json
import ssl
import sys
import urllib.request
from pathlib import Path

import click


@click.group()
def evidence() -> None:
    """Register documents in the hub's evidence log and verify receipts offline."""


@evidence.command("register")
@click.argument("document", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--collector", "url", required=True, help="Collector base URL (https://...).")
@click.option("--node", required=True, help="Registering node (as in the trust bundle).")
@click.option(
    "--key",
    "key_path",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="The node's SM2 private key PEM.",
)
@click.option(
    "--ca",
    "ca_path",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="CA certificate of the collector's TLS certificate.",
)
@click.option("--name", default=None, help="Name recorded with the digest (not the content).")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Receipt file (default: DOCUMENT.receipt.json).",
)
def register(
    document: Path,
    url: str,
    node: str,
    key_path: Path,
    ca_path: Path,
    name: str | None,
    output: Path | None,
) -> None:
    """Register DOCUMENT's SM3 digest (never its content); write the receipt as JSON."""
    from trustspace.audit.auth import sign_request
    from trustspace.crypto import SM2PrivateKey, sm3_file

    key = SM2PrivateKey.from_pem(key_path.read_bytes())
    with document.open("rb") as f:
        digest = sm3_file(f).hex()
    payload: dict[str, str] = {"digest": digest}
    if name:
        payload["name"] = name
    body = json.dumps(payload).encode()
    path = "/v1/evidence"
    headers = sign_request("POST", path, body, node, key)
    headers["Content-Type"] = "application/json"
    req = urllib.request.Request(  # noqa: S310 - an https URL from the command line
        url.rstrip("/") + path, data=body, headers=headers, method="POST"
    )
    ctx = ssl.create_default_context(cafile=str(ca_path))
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=60) as resp:  # noqa: S310
            receipt = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        click.echo(f"collector refused: {exc.code} {exc.read().decode(errors='replace')}", err=True)
        sys.exit(1)
    out = output or document.with_name(document.name + ".receipt.json")
    out.write_text(json.dumps(receipt, indent=2, sort_keys=True) + "\n")
    click.echo(str(out))


@evidence.command("verify")
@click.argument("receipt_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("document", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--hub-key",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="The hub's SM2 public key PEM (the only thing trusted).",
)
def verify(receipt_path: Path, document: Path, hub_key: Path) -> None:
    """Check offline that RECEIPT proves DOCUMENT is in the hub's signed log."""
    from trustspace.audit.receipt import ReceiptError, verify_receipt
    from trustspace.crypto import SM2PublicKey

    key = SM2PublicKey.from_pem(hub_key.read_bytes())
    try:
        receipt = json.loads(receipt_path.read_text())
        verify_receipt(receipt, document.read_bytes(), key)
    except (ReceiptError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        click.echo(f"INVALID: {exc}", err=True)
        sys.exit(1)
    click.echo(
        f"OK: leaf {receipt['leafIndex']} of {receipt['treeSize']}, "
        f"signed by hub key {key.key_id[:16]}"
    )
