"""The data space's policy bundle: compiled (policy_compiler.py) only when its inputs moved,
and the TransferPolicies' status written after each pass."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trustspace.kube import Kube, Obj
from trustspace_operator.space.policy_compiler import CompiledSpace, PolicyCompiler
from trustspace_operator.space.validated_nodes import ValidatedNodes

#: Posts a warning about the data space (reason, message) on its hub node.
Warn = Callable[[str, str], None]


def _labels(body: Obj) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((body["metadata"].get("labels") or {}).items()))


class PolicyBundles:
    def __init__(self, hub: Kube, nodes: ValidatedNodes) -> None:
        self.compiler = PolicyCompiler(hub)
        self.nodes = nodes
        self._compiled: dict[str, tuple[Any, CompiledSpace, Any]] = {}

    def compile(
        self, space: str, live: list[Obj], policies: list[Obj], hub_key: Any, warn: Warn
    ) -> tuple[CompiledSpace, Any]:
        """The policy bundle, compiled again only when its inputs moved: the policies, the
        nodes' names, generations and labels, the signer (a rotation changes none of them
        but the keys, and a compile of a thousand nodes cost a seventh of a pass)."""
        inputs = (
            hub_key.key_id,
            tuple(
                (b["metadata"]["name"], b["metadata"].get("generation"), _labels(b)) for b in live
            ),
            tuple((p["metadata"]["name"], p["metadata"].get("resourceVersion")) for p in policies),
            self.compiler.profile_versions(space),
        )
        last = self._compiled.get(space)
        if last is not None and last[0] == inputs:
            return last[1], last[2]
        compiled, result = self.compiler.compile(
            space, [self.nodes.parsed(b) for b in live], policies, hub_key, warn
        )
        self._compiled[space] = (inputs, compiled, result)
        return compiled, result

    def write_status(
        self,
        space: str,
        policies: list[Obj],
        compiled: CompiledSpace,
        result: Any,
        live: list[Obj],
    ) -> None:
        """Each TransferPolicy's status: accepted and compiled, into which bundle, how many
        nodes it selects and how many already run it."""
        self.compiler.write_status(space, policies, compiled, result, live)
