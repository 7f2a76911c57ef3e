"""Writing the operator's part of a node's status: server-side apply under its own field
manager, so the collector's part of the same status is left alone."""

from __future__ import annotations

import contextlib

from trustspace.api.dataspacenode import DataSpaceNode
from trustspace.kube import Kube, NotFound, Obj
from trustspace.kube import kinds as k
from trustspace_operator.faults import fault_point
from trustspace_operator.nodes.space_hook import SpaceHook
from trustspace_operator.nodes.status import same_status

STATUS_MANAGER = "trustspace-operator"


class StatusWriter:
    def __init__(self, hub: Kube, space: SpaceHook) -> None:
        self.hub = hub
        self.space = space

    def write(self, body: Obj, node: DataSpaceNode, status: Obj) -> str | None:
        """Apply `status` unless it says what the node's status says already; returns the
        resourceVersion the write produced (None: nothing written)."""
        current = body.get("status") or {}
        if same_status(current, status):
            return None
        if current.get("phase") != status["phase"]:
            # MirrorLink and TransferPolicy status depend on node readiness (space/).
            self.space.space_changed()
        version: str | None = None
        with contextlib.suppress(NotFound):  # deleted meanwhile
            written = self.hub.apply_status(
                k.DATASPACENODE, node.name, node.namespace, status, field_manager=STATUS_MANAGER
            )
            found = written.get("metadata", {}).get("resourceVersion")
            version = str(found) if found else None
        fault_point("after-status")
        return version
