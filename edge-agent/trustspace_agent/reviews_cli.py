"""``trustspace reviews list|approve`` and ``trustspace links list|reset``: talk to a gateway's
local API. Approvals are signed here, with the approver's key file: the private key never
leaves the approver's machine, only the signature does."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

_AGENT = click.option(
    "--agent",
    default="http://127.0.0.1:8780",
    show_default=True,
    envvar="TRUSTSPACE_AGENT",
    help="The gateway's local API.",
)


_TOKEN = click.option(
    "--token",
    default=None,
    envvar="TRUSTSPACE_AGENT_TOKEN",
    help="Bearer token of a caller in the gateway's callerTokensFile (none: loopback only).",
)


def _call(agent: str, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(  # noqa: S310 - an operator-chosen agent URL
        agent.rstrip("/") + path, data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            answer = json.loads(exc.read() or b"{}")
        except ValueError:
            answer = {}
        raise click.ClickException(
            f"{exc.code} {answer.get('code', '')}: {answer.get('message', exc.reason)}"
        ) from None
    except OSError as exc:
        raise click.ClickException(f"cannot reach {agent}: {exc}") from None


@click.group()
def reviews() -> None:
    """Transfers held for review (B5, B7) and their signed approvals."""


@reviews.command("list")
@_AGENT
@click.option("--state", default="Held", show_default=True, help="Held, Delivered, Rejected...")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
def list_cmd(agent: str, state: str, output: str) -> None:
    items = _call(agent, "GET", f"/v1/reviews?state={state}")["items"]
    if output == "json":
        click.echo(json.dumps(items, indent=2, ensure_ascii=False))
        return
    click.echo(f"{'ID':<28} {'LINK':<32} {'CLASS':<10} {'STATE':<10} APPROVALS")
    for item in items:
        groups = "; ".join(
            f"{len(g['approvedBy'])}/{g['minApprovals']} of {','.join(g['approvers'])}"
            for g in item["groups"]
        )
        click.echo(
            f"{item['id']:<28} {item['link']:<32} {item['classification']:<10} "
            f"{item['state']:<10} {groups}"
        )


@reviews.command("approve")
@_AGENT
@click.argument("transfer_id")
@click.option("--approver", required=True, help="Approver name, as in the policy.")
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The approver's SM2 private key (PEM).",
)
@click.option("--reject", is_flag=True, help="Sign a rejection instead.")
def approve_cmd(agent: str, transfer_id: str, approver: str, key_file: Path, reject: bool) -> None:
    """Sign and submit an approval (or rejection) of a held transfer."""
    from trustspace.crypto import SM2PrivateKey
    from trustspace_agent.gateway.approvals import sign_approval

    held = _call(agent, "GET", f"/v1/reviews/{transfer_id}")
    key = SM2PrivateKey.from_pem(key_file.read_bytes())
    decision = "reject" if reject else "approve"
    approval = sign_approval(key, transfer_id, approver, decision, held["payloadDigest"])
    answer = _call(agent, "POST", f"/v1/reviews/{transfer_id}/approvals", approval)
    click.echo(f"{transfer_id}: {answer['state']}")


@click.group()
def links() -> None:
    """Links' state and circuit breakers (B8) on a gateway."""


@links.command("list")
@_AGENT
def links_list(agent: str) -> None:
    items = _call(agent, "GET", "/v1/links")["items"]
    click.echo(f"{'KIND':<7} {'NAME':<34} {'BREAKER':<9} {'ALLOWED':>8} {'DENIED':>7} REASON")
    for b in items:
        cb, t = b["circuitBreaker"], b["transfers"]
        click.echo(
            f"{b['kind']:<7} {b['name']:<34} {cb['state']:<9} {t['allowed']:>8} "
            f"{t['denied']:>7} {cb.get('reason', '')}"
        )


@links.command("reset")
@_AGENT
@_TOKEN
@click.argument("name")
@click.option("--kind", type=click.Choice(["link", "caller"]), default="link", show_default=True)
def links_reset(agent: str, token: str | None, name: str, kind: str) -> None:
    """Close a tripped circuit breaker by hand (audited under the token's caller)."""
    answer = _call(agent, "POST", f"/v1/links/{name}/reset?kind={kind}", token=token)
    click.echo(f"{kind} {name}: {answer['circuitBreaker']['state']}")
