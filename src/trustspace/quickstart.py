"""The quickstart (`make run`): local control planes for a hub and two edges.

It grows with the project: today it starts the clusters, installs the CRDs and samples
when they exist, and shows how to reach each cluster with kubectl.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from types import FrameType

import click

from trustspace.localk8s import BinariesNotFound, ControlPlaneError, LocalFleet, find_bin_dir
from trustspace.localk8s.binaries import repo_root

CLUSTERS = ("hub", "edge-vn", "edge-th")


def _say(message: str) -> None:
    click.echo(click.style("==> ", fg="cyan", bold=True) + message, err=True)


def _apply_dir(fleet: LocalFleet, directory: Path, what: str) -> None:
    files = sorted(directory.glob("*.yaml")) if directory.is_dir() else []
    if not files:
        return
    _say(f"applying {what} from {directory} to every cluster")
    for member in fleet:
        member.kubectl("apply", "--server-side", "-f", str(directory))


@click.command()
@click.option(
    "--exit-when-ready",
    is_flag=True,
    envvar="TRUSTSPACE_QUICKSTART_EXIT",
    help="Non-interactive: exit 0 once everything is up (also TRUSTSPACE_QUICKSTART_EXIT=1).",
)
def quickstart(exit_when_ready: bool) -> None:
    """Start a local hub and two edges and keep them running until Ctrl-C."""
    try:
        _say("finding or building kube-apiserver, etcd, kubectl and helm")
        bin_dir = find_bin_dir()
        _say(f"starting control planes: {', '.join(CLUSTERS)}")
        fleet = LocalFleet(CLUSTERS, bin_dir=bin_dir, controller_manager=True)
        fleet.start()
    except (BinariesNotFound, ControlPlaneError) as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        root = repo_root()
        if root is not None:
            _apply_dir(fleet, root / "crds", "the trustspace.io CRDs")
        _say("ready. Each cluster is a real kube-apiserver + etcd on loopback:")
        for member in fleet:
            click.echo(f"  {member.name:8} {member.server}   KUBECONFIG={member.kubeconfig}")
        hub = fleet["hub"]
        click.echo("\nTry:")
        click.echo(f"  export PATH={bin_dir}:$PATH KUBECONFIG={hub.kubeconfig}")
        click.echo("  kubectl get ns")
        if exit_when_ready:
            _say("non-interactive mode: everything is up, cleaning up")
            return
        _say("press Ctrl-C to stop and clean up")
        _wait_for_signal()
    finally:
        fleet.destroy()
        _say("stopped; nothing left running")


def _wait_for_signal() -> None:
    stop = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, handler)
    try:
        while not stop:
            time.sleep(0.5)
    except KeyboardInterrupt:
        print(file=sys.stderr)
