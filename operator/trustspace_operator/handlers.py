"""kopf handlers: every path leads to the node or the space controller (compose.py).

Nodes are watched with a raw event handler, not kopf's create/update/resume handlers: the
controller knows what it has already done, so it needs no diff-base patched onto every node,
and a burst of events for one node becomes one queued reconcile. kopf still runs the delete
handler behind its finalizer (progress in annotations, so the status schema stays ours), for
the nodes whose objects owner references cannot reach (another cluster or namespace); the
garbage collector removes the others'. The objects a node owns are watched by
`watch.OwnedWatcher`.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from trustspace.api.constants import (
    DATASPACENODE_PLURAL,
    GROUP,
    MIRRORLINK_PLURAL,
    TRANSFERPOLICY_PLURAL,
    VERSION,
)
from trustspace.api.dataspacenode import PlacementMode
from trustspace.api.resource import plain
from trustspace.gctuning import settle_heap
from trustspace.kube import Kube, Unreachable
from trustspace_operator import render
from trustspace_operator.compose import Operator
from trustspace_operator.config import CONFIG
from trustspace_operator.space.gateway_extras import APPROVERS_LABEL

log = logging.getLogger(__name__)
NODES = (GROUP, VERSION, DATASPACENODE_PLURAL)


def running(memo: Any) -> Operator:
    """The operator this kopf run started (kept in kopf's memo, not in a module global)."""
    op: Operator = memo.operator
    return op


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix="kopf.trustspace.io"
    )
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.persistence.finalizer = "trustspace.io/cleanup"
    # Users read our own Events; kopf's are for handler failures only.
    settings.posting.level = logging.WARNING
    settings.execution.max_workers = CONFIG.workers
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    # One line per handled watch event is noise at this scale; failures still log.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    if getattr(memo, "operator", None) is None:
        memo.operator = Operator(Kube.from_kubeconfig(CONFIG.kubeconfig), CONFIG)
        memo.operator.start()
    settle_heap()


@kopf.on.cleanup()
def shutdown(memo: kopf.Memo, **_: Any) -> None:
    if getattr(memo, "operator", None) is not None:
        running(memo).stop()


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf's create/update/resume handlers are not used, so it keeps no diff-base: that
    saves one patch of the node per change, and the watch event the patch causes."""

    def build(
        self, *, body: kopf.Body, extra_fields: Any = None
    ) -> kopf.BodyEssence:  # kopf deep-copied every event's body to build it
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        # The same empty essence as `build`: kopf sees no change (a no-op cause) instead of
        # a creation on every event, which it would log with the whole body formatted.
        return kopf.BodyEssence()

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


@kopf.on.event(*NODES, id="node-event")
async def node_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Every watch event of a node, judged on the event loop (no thread hop): most are
    status writes coming back and need nothing. The controller decides from the spec
    generation and the rotation request what it has not yet done (nodes/schedule.py `wants`)."""
    ctl = running(memo).nodes
    body = event["object"]
    if event.get("type") == "DELETED":
        meta = body["metadata"]
        ctl.forget(meta["namespace"], meta["name"])
        # Its keys leave the trust bundle (a node with the finalizer did this in cleanup).
        ctl.space.space_changed()
        return
    kept = ctl.observe(body)
    if ctl.wants(kept) is not None:
        ctl.node_changed(kept)


@kopf.on.event(GROUP, VERSION, TRANSFERPOLICY_PLURAL, id="policy-changed")
@kopf.on.event(GROUP, VERSION, MIRRORLINK_PLURAL, id="link-changed")
def policy_changed(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """A TransferPolicy or MirrorLink changed: recompile, redistribute, re-check links."""
    if event.get("type") is not None:
        running(memo).space.space_changed()


@kopf.on.event("", "v1", "configmaps", labels={"trustspace.io/profiles": "true"})
@kopf.on.event("", "v1", "configmaps", labels={APPROVERS_LABEL: "true"}, id="approvers-changed")
def profiles_changed(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Jurisdiction profile overrides (R4) or the approvers' keys changed: republish now."""
    if event.get("type") is not None:
        running(memo).space.space_changed()


def needs_cleanup(body: kopf.Body, **_: Any) -> bool:
    """Whether deleting the node takes the operator's cleanup, and so kopf's finalizer: not
    when owner references let the garbage collector remove its objects. A finalizer costs
    every new node a patch (a full validation of the node by the API server; about a
    twelfth of the API server's work per node at 1,000 nodes)."""
    placement = (body.get("spec") or {}).get("placement") or {}
    node_ns = str(body["metadata"]["namespace"])
    return not render.collected_with_node(
        str(placement.get("mode", PlacementMode.LOCAL)), placement.get("namespace"), node_ns
    )


@kopf.on.delete(*NODES, when=needs_cleanup)
def node_deleted(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    try:
        running(memo).nodes.cleanup(plain(body))
    except Unreachable as exc:
        raise kopf.TemporaryError(f"edge cluster unreachable: {exc}", delay=15) from exc


@kopf.on.probe(id="nodes")
def probe(memo: kopf.Memo, **_: Any) -> int:
    """How many nodes the operator knows (the liveness endpoint's `nodes`)."""
    if getattr(memo, "operator", None) is None:
        return 0
    return running(memo).nodes.node_count()
