"""What the node controller needs of the space controller (space/space_controller.py), as a
Protocol: the nodes package does not import the space package."""

from __future__ import annotations

from typing import Protocol


class SpaceHook(Protocol):
    def space_changed(self) -> None:
        """Something the space's bundles or statuses are built from changed: a key, a node's
        phase, a node gone. The space controller coalesces these into one pass."""

    def includes(self, key_id: str) -> bool:
        """Whether the trust bundle last delivered announces this key."""

    def current_hash(self, namespace: str) -> str | None:
        """The content hash of the policy bundle last published in the data space, if any."""


class NoSpace:
    """For a node controller without a space controller (tests of the reconcile alone)."""

    def space_changed(self) -> None:
        return None

    def includes(self, key_id: str) -> bool:
        return True

    def current_hash(self, namespace: str) -> str | None:
        return None
