"""`trustspace cluster`: local control planes for humans (hack/local-cluster.sh calls this)."""

from __future__ import annotations

from pathlib import Path

import click

from trustspace.localk8s import (
    BinariesNotFound,
    ControlPlaneError,
    LocalCluster,
    default_root,
)

_root_option = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="State directory (default: $TRUSTSPACE_CLUSTERS or ~/.cache/trustspace/clusters).",
)


@click.group()
def cluster() -> None:
    """Local Kubernetes control planes (etcd + kube-apiserver) on loopback."""


@cluster.command()
@click.argument("name")
@click.option("--api-port", type=int, default=None, help="API server port (default: a free one).")
@click.option(
    "--controller-manager/--no-controller-manager",
    default=True,
    help="Also run kube-controller-manager (garbage collection, workload controllers).",
)
@_root_option
def up(name: str, api_port: int | None, controller_manager: bool, root: Path | None) -> None:
    """Start cluster NAME in the background; the last line printed is its kubeconfig path."""
    base = root or default_root()
    state = LocalCluster.read_state(name, base)
    if state is not None and all(_alive(pid) for pid in state.pids.values()):
        click.echo(f"cluster {name} already runs at {state.server}", err=True)
        click.echo(str(base / name / "kubeconfig"))
        return
    LocalCluster.stop_detached(name, base)  # clear the remains of a half-dead cluster
    local = LocalCluster(
        name,
        root=base,
        api_port=api_port,
        controller_manager=controller_manager,
        durable=True,
        detach=True,
    )
    try:
        local.start()
    except (BinariesNotFound, ControlPlaneError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"cluster {name} runs at {local.server}; try:", err=True)
    click.echo(f"  export KUBECONFIG={local.kubeconfig}", err=True)
    click.echo(f"  {local.bin_dir / 'kubectl'} get ns", err=True)
    click.echo(f"stop it with: hack/local-cluster.sh down {name}", err=True)
    click.echo(str(local.kubeconfig))


@cluster.command()
@click.argument("name")
@click.option("--purge", is_flag=True, help="Also delete its data and certificates.")
@_root_option
def down(name: str, purge: bool, root: Path | None) -> None:
    """Stop cluster NAME."""
    stopped = LocalCluster.stop_detached(name, root, purge=purge)
    click.echo(f"cluster {name} {'stopped' if stopped else 'was not running'}", err=True)


@cluster.command()
@click.argument("name")
@_root_option
def kubeconfig(name: str, root: Path | None) -> None:
    """Print the path of cluster NAME's admin kubeconfig."""
    base = root or default_root()
    path = base / name / "kubeconfig"
    if not path.exists():
        raise click.ClickException(
            f"no cluster {name} under {base}; start it with: hack/local-cluster.sh up {name}"
        )
    if LocalCluster.read_state(name, base) is None:
        click.echo(f"warning: cluster {name} is not running", err=True)
    click.echo(str(path))


@cluster.command("list")
@_root_option
def list_(root: Path | None) -> None:
    """List local clusters and whether they run."""
    base = root or default_root()
    if not base.is_dir():
        return
    for entry in sorted(p for p in base.iterdir() if p.is_dir()):
        state = LocalCluster.read_state(entry.name, base)
        if state is not None and all(_alive(pid) for pid in state.pids.values()):
            click.echo(f"{entry.name}\trunning\t{state.server}")
        else:
            click.echo(f"{entry.name}\tstopped")


def _alive(pid: int) -> bool:
    from trustspace.localk8s.processes import pid_alive

    return pid_alive(pid)
