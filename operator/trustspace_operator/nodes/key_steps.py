"""A node's SM2 key, one safe step at a time: issue, retire expired keys, stage the next key,
and promote it once the trust bundle announces it (or `publish_wait` has passed)."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time

from trustspace import clock
from trustspace.api.common import parse_duration
from trustspace.api.constants import ROTATE_KEY_ANNOTATION, NodeReason, Role
from trustspace.api.dataspacenode import DataSpaceNode, RotationPolicy
from trustspace.kube import Conflict, Kube, NotFound, Obj
from trustspace.kube import kinds as k
from trustspace_operator import keys, render
from trustspace_operator.config import OperatorConfig
from trustspace_operator.events import EventRecorder
from trustspace_operator.faults import fault_point
from trustspace_operator.metrics import METRICS
from trustspace_operator.nodes.memory import NodeKey, NodeMemory
from trustspace_operator.nodes.schedule import rotation_request
from trustspace_operator.nodes.space_hook import SpaceHook
from trustspace_operator.targets import Target


def rotation_due(
    node: DataSpaceNode, state: keys.KeyState, request: str | None, now: dt.datetime
) -> str | None:
    """Why the key must rotate now (a request not yet handled, or the schedule), or None."""
    if request is not None and request != state.handled_request:
        return f"requested ({request})"
    rotation = node.spec.key_rotation
    automatic = rotation.policy == RotationPolicy.AUTOMATIC
    if automatic and now >= state.not_before + parse_duration(rotation.rotate_every):
        return f"scheduled every {rotation.rotate_every}"
    return None


class KeySteps:
    def __init__(
        self, hub: Kube, config: OperatorConfig, events: EventRecorder, space: SpaceHook
    ) -> None:
        self.hub = hub
        self.config = config
        self.events = events
        self.space = space
        #: Staged key ids waiting for the trust bundle to announce them, and their node.
        self._awaiting: dict[str, NodeKey] = {}
        self._guard = threading.Lock()

    def published(self, key_ids: frozenset[str]) -> list[NodeKey]:
        """The trust bundle now announces these keys: the nodes that waited for one of them."""
        with self._guard:
            return [self._awaiting.pop(kid) for kid in list(self._awaiting) if kid in key_ids]

    def awaiting_publish(self) -> bool:
        """Whether a staged key waits for the trust bundle to announce it."""
        return bool(self._awaiting)

    def cached(
        self, body: Obj, node: DataSpaceNode, target: Target, memory: NodeMemory, now: dt.datetime
    ) -> Obj | None:
        """The key steps from the Secret as this process last wrote or read it, saving a read
        per step of a rotation. Only the operator writes it; if someone else did (the watch
        also queues a full reconcile then), the write's precondition fails and the caller
        reads it afresh (returns None)."""
        if memory.secret is None:
            return None
        try:
            secret = self._retire(body, target.kube, memory.secret, now)
            return self._rotate_if_due(body, node, target.kube, secret, memory, now)
        except (Conflict, NotFound):
            return None

    def run(
        self,
        body: Obj,
        node: DataSpaceNode,
        target: Target,
        memory: NodeMemory,
        now: dt.datetime,
        first: list[str] | None = None,
    ) -> Obj:
        """Read (or issue) the key Secret and take the steps due; returns the Secret."""
        names = render.Names(node.name)
        ns = render.target_namespace(node)
        owners = render.owner_reference(node)
        extra = {"ownerReferences": owners} if owners else None
        never_provisioned = (body.get("status") or {}).get("activeKey") is None
        secret, issued = keys.ensure_secret(
            target.kube,
            names.key_secret,
            ns,
            render.labels(node),
            now,
            extra,
            likely_missing=never_provisioned,
        )
        if issued:
            state = keys.read_state(secret)
            METRICS.keys_issued.inc()
            note = f"issued SM2 key {state.active.key_id[:16]}"
            if first:
                first.append(note)  # one Event for a new node, not two
            else:
                self.events.post(body, "Normal", NodeReason.KEY_ISSUED, note)
            self.space.space_changed()
        secret = self._retire(body, target.kube, secret, now)
        return self._rotate_if_due(body, node, target.kube, secret, memory, now)

    def _retire(self, body: Obj, kube: Kube, secret: Obj, now: dt.datetime) -> Obj:
        before = keys.read_state(secret).previous
        secret = keys.retire_expired(kube, secret, now)
        gone = {p.key_id for p in before} - {p.key_id for p in keys.read_state(secret).previous}
        for key_id in sorted(gone):
            self.events.post(
                body, "Normal", "KeyRetired", f"SM2 key {key_id[:16]} retired: grace period over"
            )
        if gone:
            self.space.space_changed()
        return secret

    def _rotate_if_due(
        self,
        body: Obj,
        node: DataSpaceNode,
        kube: Kube,
        secret: Obj,
        memory: NodeMemory,
        now: dt.datetime,
    ) -> Obj:
        state = keys.read_state(secret)
        request = rotation_request(body)
        why = rotation_due(node, state, request, now)
        if why is None and state.staged is None:
            self._clear_handled_request(body, state, request)
            return secret
        if state.staged is None:
            secret = keys.stage_next(kube, secret, now)
            state = keys.read_state(secret)
            memory.staged_since = time.monotonic()
            # Verifiers learn the next key before anything is signed with it.
            self.space.space_changed()
        staged = state.staged
        assert staged is not None
        if memory.staged_since is None:
            memory.staged_since = time.monotonic()
        waited = time.monotonic() - memory.staged_since
        if not self.space.includes(staged.key_id) and waited < self.config.publish_wait:
            with self._guard:
                self._awaiting[staged.key_id] = (node.namespace, node.name)
            return secret
        grace = parse_duration(node.spec.key_rotation.grace_period)
        old_id = state.active.key_id
        secret = keys.promote(
            kube,
            secret,
            now,
            grace,
            request if request != state.handled_request else None,
            endorse_successor=node.spec.role == Role.HUB,
        )
        memory.staged_since = None
        with self._guard:  # promoted without the announcement (publish_wait passed)
            self._awaiting.pop(staged.key_id, None)
        METRICS.rotations.inc()
        self.events.post(
            body,
            "Normal",
            NodeReason.KEY_ROTATED,
            f"rotated SM2 key {old_id[:16]} -> {staged.key_id[:16]} "
            f"({why or 'staged key promoted'}); the old key verifies until "
            f"{clock.rfc3339(now + grace)}",
        )
        self.space.space_changed()
        fault_point("before-annotation-clear")
        self._clear_handled_request(body, keys.read_state(secret), request)
        return secret

    def _clear_handled_request(self, body: Obj, state: keys.KeyState, request: str | None) -> None:
        if request is None or request != state.handled_request:
            return
        meta = body["metadata"]
        with contextlib.suppress(NotFound):
            self.hub.patch(
                k.DATASPACENODE,
                meta["name"],
                {"metadata": {"annotations": {ROTATE_KEY_ANNOTATION: None}}},
                meta["namespace"],
            )
