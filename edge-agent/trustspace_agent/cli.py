"""``trustspace agent ...``: the edge agent's commands."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

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
    run_loop(run_agent(AgentConfig.load(config_path)))


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop when it is installed (``TRUSTSPACE_EVENT_LOOP=asyncio`` opts
    out): its C event loop and TLS transport cut the gateway's CPU per transfer (see the
    Gateway section of docs/benchmarks.md)."""
    if os.environ.get("TRUSTSPACE_EVENT_LOOP", "uvloop") == "uvloop":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            uvloop.run(main)
            return
    asyncio.run(main)
