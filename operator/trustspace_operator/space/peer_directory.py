"""Keeping the directory of gateway peers (peers.SpaceDirectory) fresh from each pass's lists."""

from __future__ import annotations

from collections.abc import Callable

from trustspace.kube import Obj
from trustspace_operator.peers import SpaceDirectory


def refresh_directory(
    directory: SpaceDirectory,
    space: str,
    nodes: list[Obj],
    links: list[Obj],
    policies: list[Obj],
    views_changed: Callable[[str, list[str]], None],
) -> None:
    """Rebuild the data space's peers; tell `views_changed` whose gateway view moved."""
    changed = directory.refresh(space, nodes, links, policies)
    if changed:
        views_changed(space, changed)
