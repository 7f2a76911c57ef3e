"""`trustspace status` (also `kubectl trustspace status`): the data space at a glance.

A tree per namespace: nodes (phase, key, audit lag, heartbeat), the links leaving each node
(state, counters, breaker), and the policies (bundle version, nodes running it). Colours
only on a terminal.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import click

from trustspace import clock
from trustspace.kube import ApiError, Kube, Unreachable
from trustspace.kube import kinds as k

_GOOD = {"Ready", "Established", "Closed", "True"}
_BAD = {"Degraded", "Failed", "Tripped", "Open", "False"}


def _paint(text: str, state: str | None = None) -> str:
    if state in _GOOD:
        return click.style(text, fg="green")
    if state in _BAD:
        return click.style(text, fg="red", bold=True)
    if state:
        return click.style(text, fg="yellow")
    return text


def _age(stamp: str | None, now: dt.datetime) -> str:
    if not stamp:
        return "-"
    then = clock.parse(stamp)
    seconds = int((now - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _cond(obj: dict[str, Any], type_: str) -> str | None:
    for cond in (obj.get("status") or {}).get("conditions", []):
        if cond["type"] == type_:
            return str(cond["status"])
    return None


def _node_line(node: dict[str, Any], now: dt.datetime) -> str:
    spec, status = node.get("spec") or {}, node.get("status") or {}
    phase = status.get("phase") or "Pending"
    key = status.get("activeKey") or {}
    audit = status.get("audit") or {}
    parts = [
        click.style(node["metadata"]["name"], bold=True),
        f"{spec.get('role', '?')}/{spec.get('jurisdiction', '?')}",
        _paint(phase, phase),
        f"key {key.get('keyId', '-')[:12]} ({_age(key.get('notBefore'), now)})",
        f"audit seq {audit.get('lastSequence', '-')} lag {audit.get('lag', '-')}",
        f"heartbeat {_age(status.get('lastHeartbeatTime'), now)} ago",
    ]
    for type_ in ("AgentReady", "PolicySynced", "AuditStreaming"):
        value = _cond(node, type_)
        if value is not None and value != "True":
            parts.append(_paint(f"{type_}={value}", value))
    return "  ".join(parts)


def _link_line(link: dict[str, Any]) -> str:
    spec, status = link.get("spec") or {}, link.get("status") or {}
    state = status.get("state") or "Pending"
    counts = status.get("transfers") or {}
    breaker = status.get("circuitBreaker") or {}
    src = (spec.get("source") or {}).get("name", "?")
    dst = (spec.get("destination") or {}).get("name", "?")
    line = (
        f"{link['metadata']['name']}: {src} -> {dst}  {_paint(state, state)}  "
        f"allowed {counts.get('allowed', 0)} denied {counts.get('denied', 0)} "
        f"in review {counts.get('inReview', 0)}"
    )
    if breaker:
        b_state = breaker.get("state", "Closed")
        line += f"  breaker {_paint(b_state, b_state)}"
        if breaker.get("reason") and b_state != "Closed":
            line += f" ({breaker['reason']})"
    return line


def _policy_line(policy: dict[str, Any]) -> str:
    status = policy.get("status") or {}
    compiled = _cond(policy, "Compiled")
    bundle = status.get("bundle") or {}
    word = "compiled" if compiled == "True" else "not compiled"
    line = f"{policy['metadata']['name']}: {_paint(word, compiled)}"
    if bundle:
        running = f"{status.get('syncedNodes', 0)}/{status.get('selectedNodes', 0)}"
        line += f" into v{bundle.get('version')}, {running} nodes run it"
    if status.get("conflicts"):
        line += "  " + _paint(f"{len(status['conflicts'])} conflicts", "Unknown")
    return line


def render_tree(
    nodes: list[dict[str, Any]], links: list[dict[str, Any]], policies: list[dict[str, Any]]
) -> list[str]:
    now = clock.now()
    by_ns: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for kind, objs in (("nodes", nodes), ("links", links), ("policies", policies)):
        for obj in objs:
            by_ns[obj["metadata"]["namespace"]][kind].append(obj)
    lines: list[str] = []
    for ns in sorted(by_ns):
        space = by_ns[ns]
        lines.append(click.style(f"data space {ns}", fg="cyan", bold=True))
        outgoing: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for link in space["links"]:
            outgoing[((link.get("spec") or {}).get("source") or {}).get("name", "")].append(link)
        ordered = sorted(
            space["nodes"],
            key=lambda n: ((n.get("spec") or {}).get("role") != "hub", n["metadata"]["name"]),
        )
        sections = [("node", n) for n in ordered] + [
            ("policy", p) for p in sorted(space["policies"], key=lambda p: p["metadata"]["name"])
        ]
        for i, (kind, obj) in enumerate(sections):
            last = i == len(sections) - 1
            branch, stem = ("└─ ", "   ") if last else ("├─ ", "│  ")
            if kind == "node":
                lines.append(branch + _node_line(obj, now))
                mine = sorted(
                    outgoing.get(obj["metadata"]["name"], []), key=lambda x: x["metadata"]["name"]
                )
                for j, link in enumerate(mine):
                    twig = "└─ " if j == len(mine) - 1 else "├─ "
                    lines.append(stem + twig + _link_line(link))
            else:
                lines.append(branch + "policy " + _policy_line(obj))
    return lines


@click.command()
@click.option("--namespace", "-n", default=None, help="One data space (namespace); default: all.")
@click.option("--kubeconfig", envvar="KUBECONFIG", default=None, help="Hub cluster kubeconfig.")
def status(namespace: str | None, kubeconfig: str | None) -> None:
    """Nodes, links, keys, breakers and audit lag of every data space, as a tree."""
    try:
        kube = Kube.from_kubeconfig(kubeconfig)
        nodes = list(kube.list(k.DATASPACENODE, namespace))
        links = list(kube.list(k.MIRRORLINK, namespace))
        policies = list(kube.list(k.TRANSFERPOLICY, namespace))
    except (ApiError, Unreachable) as exc:
        raise click.ClickException(f"cannot read the hub cluster: {exc}") from exc
    if not nodes and not links and not policies:
        click.echo("no trustspace.io objects found; apply config/samples/ or see the README")
        return
    for line in render_tree(nodes, links, policies):
        click.echo(line)
