"""``trustspace agent ...``: the edge agent's commands."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from trustspace.logs import configure


@click.group()
def agent() -> None:
    """The edge agent: durable audit log, shipping to the hub, local API."""


@agent.command("run")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="Agent configuration (YAML).",
)
def run(config_path: Path) -> None:
    """Run the agent until SIGTERM."""
    from trustspace_agent.app import run_agent
    from trustspace_agent.config import AgentConfig

    configure("agent")
    asyncio.run(run_agent(AgentConfig.load(config_path)))
