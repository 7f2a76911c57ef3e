"""What the space controller needs of the node controller, passed in its constructor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from trustspace.kube import Obj


def _none() -> list[Obj] | None:
    return None


def _never() -> bool:
    return False


def _ignore_published(key_ids: frozenset[str]) -> None:
    return None


def _ignore_views(namespace: str, names: list[str]) -> None:
    return None


@dataclass(frozen=True)
class NodeFeed:
    #: The nodes as the node controller's watch last delivered them: a pass then lists no
    #: nodes, as long as every node of the last listing is there (None: always list).
    watched: Callable[[], list[Obj] | None] = _none
    #: True while a staged key waits for the next pass to announce it (a rotation): then
    #: passes follow each other closely.
    urgent: Callable[[], bool] = _never
    #: Called with the key ids of every bundle just delivered (the node controller promotes
    #: the staged keys that waited for them).
    published: Callable[[frozenset[str]], None] = _ignore_published
    #: Called with the nodes of a data space whose gateway peers or Secrets changed.
    views_changed: Callable[[str, list[str]], None] = _ignore_views
