"""The `trustspace` command line.

Sub-commands of the shared package are registered here; the operator and the agent add
theirs through the ``trustspace.commands`` entry-point group, so this package never
imports either of them.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import click

from trustspace import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="trustspace")
def main() -> None:
    """trustspace: a cross-border trusted data space on Kubernetes."""


def _register_builtin() -> None:
    from trustspace.cli.cluster import cluster
    from trustspace.cli.crypto import crypto
    from trustspace.cli.policy import policy
    from trustspace.cli.status import status
    from trustspace.quickstart import quickstart

    main.add_command(cluster)
    main.add_command(crypto)
    main.add_command(policy)
    main.add_command(status)
    main.add_command(quickstart)


def _register_plugins() -> None:
    for ep in entry_points(group="trustspace.commands"):
        command = ep.load()
        if isinstance(command, click.Command):
            main.add_command(command, name=ep.name)


_register_builtin()
_register_plugins()
