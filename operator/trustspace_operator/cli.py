"""`trustspace operator run` and `trustspace keys rotate`."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from trustspace import clock
from trustspace.api.constants import ROTATE_KEY_ANNOTATION
from trustspace.kube import ApiError, Kube, Unreachable
from trustspace.kube import kinds as k


@click.group("operator")
def operator_group() -> None:
    """The trustspace operator (runs in the hub cluster)."""


@operator_group.command("run")
@click.option(
    "--namespace",
    "-n",
    "namespaces",
    multiple=True,
    help="Watch only these namespaces (repeatable).",
)
@click.option(
    "--kubeconfig",
    envvar="KUBECONFIG",
    default=None,
    help="Hub cluster kubeconfig (default: in-cluster).",
)
@click.option(
    "--leader-elect/--no-leader-elect",
    default=True,
    show_default=True,
    help="Act only while holding the Lease.",
)
@click.option(
    "--lease-namespace",
    default=None,
    help="Namespace of the leader Lease (default: the pod's, else 'default').",
)
@click.option(
    "--liveness-port", type=int, default=8080, show_default=True, help="Port of /healthz (0: off)."
)
@click.option(
    "--metrics-port", type=int, default=9090, show_default=True, help="Port of /metrics (0: off)."
)
@click.option(
    "--agent-runtime",
    type=click.Choice(["kubernetes", "external"]),
    default=None,
    help="Where agents run.",
)
@click.option("--collector-url", default=None, help="Hub collector URL given to agents.")
@click.option(
    "--collector-ca-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="CA of the collector's TLS certificate, shipped to agents with the trust bundle.",
)
@click.option(
    "--collector-tls-secret",
    default=None,
    help="Issue the collector's TLS pair into this Secret in each data space's namespace, "
    "from the data space's CA (then that CA is the collector CA agents get).",
)
@click.option("--tick", type=float, default=None, help="Seconds between per-node checks.")
@click.option(
    "--log-format",
    type=click.Choice(["json", "human"]),
    default=None,
    help="Log format (default json).",
)
def run(
    namespaces: tuple[str, ...],
    kubeconfig: str | None,
    leader_elect: bool,
    lease_namespace: str | None,
    liveness_port: int,
    metrics_port: int,
    agent_runtime: str | None,
    collector_url: str | None,
    collector_ca_file: str | None,
    collector_tls_secret: str | None,
    tick: float | None,
    log_format: str | None,
) -> None:
    """Reconcile DataSpaceNodes: provision mirror nodes, rotate SM2 keys, publish trust."""
    from trustspace import logs

    logs.configure("operator", fmt=log_format)  # type: ignore[arg-type]
    # Settings are read by the handler module at import, so they go in first.
    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig
    for var, value in (
        ("TRUSTSPACE_AGENT_RUNTIME", agent_runtime),
        ("TRUSTSPACE_COLLECTOR_URL", collector_url),
        ("TRUSTSPACE_COLLECTOR_CA_FILE", collector_ca_file),
        ("TRUSTSPACE_COLLECTOR_TLS_SECRET", collector_tls_secret),
        ("TRUSTSPACE_TICK", None if tick is None else str(tick)),
        ("TRUSTSPACE_NAMESPACES", ",".join(namespaces) or None),
    ):
        if value is not None:
            os.environ[var] = value
    from trustspace_operator import config

    config.CONFIG = config.OperatorConfig()
    import kopf
    from prometheus_client import start_http_server

    from trustspace_operator import handlers  # noqa: F401 - registers the handlers
    from trustspace_operator.leader import LeaderElector, StandbyHealth
    from trustspace_operator.metrics import METRICS

    log = logging.getLogger("trustspace.operator")
    hub = Kube.from_kubeconfig(config.CONFIG.kubeconfig)
    elector = None
    if leader_elect:
        ns = lease_namespace or _pod_namespace() or "default"
        duration = float(os.environ.get("TRUSTSPACE_LEASE_DURATION", "15"))
        elector = LeaderElector(hub, ns, lease_duration=duration, renew_every=duration / 3)
        log.info("waiting to lead (lease %s/trustspace-operator)", ns)
        if liveness_port:
            with StandbyHealth(liveness_port):
                elector.acquire()
        else:
            elector.acquire()
        elector.keep_renewing()
    if metrics_port:
        start_http_server(metrics_port, registry=METRICS.registry)
    try:
        kopf.run(
            standalone=True,
            clusterwide=not namespaces,
            namespaces=list(namespaces),
            liveness_endpoint=f"http://0.0.0.0:{liveness_port}/healthz" if liveness_port else None,
        )
    except KeyboardInterrupt:
        pass
    finally:
        if elector is not None:
            elector.release()


def _pod_namespace() -> str | None:
    path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    try:
        with open(path) as f:  # noqa: PTH123
            return f.read().strip() or None
    except OSError:
        return None


@click.group("keys")
def keys_group() -> None:
    """SM2 keys of data-space nodes."""


@keys_group.command("rotate")
@click.argument("node")
@click.option("--namespace", "-n", default="default", show_default=True)
@click.option("--kubeconfig", envvar="KUBECONFIG", default=None)
@click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Wait until the new key is active."
)
@click.option("--timeout", type=float, default=60.0, show_default=True)
def rotate(node: str, namespace: str, kubeconfig: str | None, wait: bool, timeout: float) -> None:
    """Rotate NODE's SM2 key now (sets the trustspace.io/rotate-key annotation)."""
    import time

    kube = Kube.from_kubeconfig(kubeconfig)
    try:
        body = kube.get(k.DATASPACENODE, node, namespace)
        if body is None:
            raise click.ClickException(f"DataSpaceNode {namespace}/{node} not found")
        before = ((body.get("status") or {}).get("activeKey") or {}).get("keyId")
        token = clock.now().strftime("%Y%m%dT%H%M%S%fZ")
        kube.patch(
            k.DATASPACENODE,
            node,
            {"metadata": {"annotations": {ROTATE_KEY_ANNOTATION: token}}},
            namespace,
        )
    except (ApiError, Unreachable) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"rotation requested for {namespace}/{node} ({ROTATE_KEY_ANNOTATION}={token})", err=True
    )
    if not wait:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = kube.get(k.DATASPACENODE, node, namespace) or {}
        key: Any = ((current.get("status") or {}).get("activeKey") or {}).get("keyId")
        pending = ROTATE_KEY_ANNOTATION in (
            (current.get("metadata") or {}).get("annotations") or {}
        )
        if key and key != before and not pending:
            click.echo(key)
            return
        time.sleep(0.5)
    click.echo(
        f"timed out after {timeout:.0f}s; is the operator running? "
        f"See: kubectl describe dsn {node} -n {namespace}",
        err=True,
    )
    sys.exit(1)
