"""`trustspace quickstart`: start a local data space, walk through two transfers, keep running."""

from __future__ import annotations

import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

import click

from trustspace.localk8s import BinariesNotFound, ControlPlaneError, find_bin_dir
from trustspace.quickstart.space import NAMESPACE, LocalDataSpace
from trustspace.quickstart.walkthrough import walk_through


def _say(message: str) -> None:
    click.echo(click.style("==> ", fg="cyan", bold=True) + message, err=True)


@click.command()
@click.option(
    "--exit-when-ready",
    is_flag=True,
    envvar="TRUSTSPACE_QUICKSTART_EXIT",
    help="Non-interactive: exit after the walk-through, 0 only if every node became Ready "
    "(also TRUSTSPACE_QUICKSTART_EXIT=1).",
)
@click.option(
    "--keep", is_flag=True, help="Keep the working directory (logs, databases) after exit."
)
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Once everything is Ready, write the TRUSTSPACE_E2E_* variables that point the e2e "
    "suite at this data space (as hack/kind-up.sh prints them for kind).",
)
def quickstart(exit_when_ready: bool, keep: bool, env_file: Path | None) -> None:
    """A hub (CN) and two edges (VN, TH): control planes, operator, collector, agents."""
    root = Path(tempfile.mkdtemp(prefix="trustspace-quickstart-"))
    space = LocalDataSpace(root, _say)
    ok = False
    try:
        _say("finding or building kube-apiserver, etcd, kubectl and helm (cached after once)")
        bin_dir = find_bin_dir()
        space.start(bin_dir)
        _say("waiting until every DataSpaceNode is Ready (keys, agents, policy, audit)")
        space.wait_ready()
        walk_through(space, _say)
        click.echo(space.hub.kubectl("get", "trustspace", "-A").stdout)
        hub_kubeconfig = space.hub.kubeconfig
        click.echo("Look next:")
        click.echo(f"  export PATH={bin_dir}:$PATH KUBECONFIG={hub_kubeconfig}")
        click.echo(f"  kubectl describe dsn vn-hanoi -n {NAMESPACE}")
        click.echo("  trustspace status                      # or: kubectl trustspace status")
        click.echo(
            f"  trustspace policy explain -n {NAMESPACE} --from vn-hanoi --to cn-nanning "
            "--class important --category health"
        )
        click.echo(f"  logs: {root / 'logs'}")
        ok = True
        if env_file is not None:
            write_env_file(space, env_file)
            click.echo(f"  e2e suite against this data space: source {env_file}")
        if exit_when_ready:
            _say("non-interactive mode: the walk-through passed; cleaning up")
            return
        _say("running; press Ctrl-C to stop and clean up")
        _wait_for_signal()
    except (BinariesNotFound, ControlPlaneError, TimeoutError, RuntimeError) as exc:
        raise click.ClickException(f"{exc}\n(logs: {root / 'logs'})") from exc
    finally:
        space.stop()
        if keep or not ok:
            _say(f"working directory kept: {root}")
        else:
            import shutil

            shutil.rmtree(root, ignore_errors=True)
        _say("stopped; nothing left running")


def e2e_environment(space: LocalDataSpace) -> dict[str, str]:
    """The variables tests/support/dataspace.py reads. The agents and the collector here are
    processes, not Pods, so their API URLs, the collector's database and its CA are given
    instead of found through port-forwards and `kubectl exec`."""
    return {
        "TRUSTSPACE_E2E_COLLECTOR_DB": str(space.root / "collector" / "audit.db"),
        "TRUSTSPACE_E2E_COLLECTOR_CA": str(space.ca_file),
        "TRUSTSPACE_E2E_HUB_KUBECONFIG": str(space.kubeconfig("hub")),
        "TRUSTSPACE_E2E_EDGE1_KUBECONFIG": str(space.kubeconfig("edge-vn")),
        "TRUSTSPACE_E2E_EDGE2_KUBECONFIG": str(space.kubeconfig("edge-th")),
        "TRUSTSPACE_E2E_NAMESPACE": NAMESPACE,
        "TRUSTSPACE_E2E_AGENT_URLS": ",".join(f"{n}={a.api}" for n, a in space.agents.items()),
    }


def write_env_file(space: LocalDataSpace, path: Path) -> None:
    lines = [f"export {key}={value}\n" for key, value in e2e_environment(space).items()]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(lines))
    tmp.replace(path)  # whole or not at all: a waiting test polls for it


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
