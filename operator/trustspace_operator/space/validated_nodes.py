"""DataSpaceNodes validated once per generation and labels, for the passes of the space
controller (a thousand pydantic validations a pass were half the cost of a pass)."""

from __future__ import annotations

from trustspace.api.dataspacenode import DataSpaceNode
from trustspace.kube import Obj


class ValidatedNodes:
    def __init__(self) -> None:
        self._nodes: dict[tuple[str, int, tuple[tuple[str, str], ...]], DataSpaceNode] = {}

    def node(self, body: Obj) -> DataSpaceNode:
        """The node (raises ValueError when the body does not validate)."""
        meta = body["metadata"]
        labels = tuple(sorted((meta.get("labels") or {}).items()))
        key = (str(meta.get("uid")), int(meta.get("generation") or 0), labels)
        node = self._nodes.get(key)
        if node is None:
            if len(self._nodes) > 50_000:
                self._nodes.clear()
            node = self._nodes[key] = DataSpaceNode.from_body(body)
        return node

    def parsed(self, body: Obj) -> DataSpaceNode | Obj:
        """The node for the policy compiler; a body that does not validate goes as it is,
        for the compiler to report."""
        try:
            return self.node(body)
        except ValueError:
            return body
