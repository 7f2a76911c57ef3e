"""The objects a node owns in its cluster: namespace, agent objects, caller tokens, gateway TLS."""

from __future__ import annotations

import datetime as dt
from typing import Any

from trustspace.api.dataspacenode import DataSpaceNode
from trustspace.kube import ApiError, Conflict, Kube, Obj
from trustspace.kube import kinds as k
from trustspace_operator import caller_tokens, render
from trustspace_operator.config import OperatorConfig
from trustspace_operator.events import EventRecorder
from trustspace_operator.metrics import METRICS
from trustspace_operator.peers import SpaceDirectory
from trustspace_operator.targets import Target
from trustspace_operator.tls.gateway import GatewayTls

CREATED_NAMESPACE_ANNOTATION = "trustspace.io/created-for-node"


def is_subset(desired: Any, actual: Any) -> bool:
    """True when every field we set has that value in the live object (server defaults and
    other managers' fields are ignored)."""
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return False
        return all(key in actual and is_subset(v, actual[key]) for key, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(desired) != len(actual):
            return False
        return all(is_subset(d, a) for d, a in zip(desired, actual, strict=True))
    if isinstance(desired, int | float) and isinstance(actual, int | float):
        return desired == actual
    return bool(desired == actual)


class OwnedObjects:
    def __init__(
        self,
        config: OperatorConfig,
        events: EventRecorder,
        directory: SpaceDirectory,
        gateway_tls: GatewayTls,
    ) -> None:
        self.config = config
        self.events = events
        self.directory = directory
        self.gateway_tls = gateway_tls

    def apply(
        self, body: Obj, node: DataSpaceNode, target: Target, first: list[str]
    ) -> tuple[list[str], dict[str, Obj]]:
        """Make the node's objects match; returns what changed and the live objects by kind.
        A first provisioning's note goes to `first` (posted with the key's)."""
        kube = target.kube
        changed: list[str] = []
        live_objects: dict[str, Obj] = {}
        ns = render.target_namespace(node)
        if ns != node.namespace or target.remote:
            self._ensure_namespace(kube, node, ns)
        provisioned_before = body.get("status", {}).get("observedGeneration") is not None
        spec_changed = body.get("status", {}).get("observedGeneration") != node.generation
        digests = self._caller_tokens(body, node, kube, provisioned_before, spec_changed, first)
        desired = render.desired_objects(
            node,
            image=self.config.agent_image,
            collector_url=self.config.collector_url,
            gateway=self.directory.view(node.namespace, node.name),
            caller_digests=digests,
        )
        for obj in desired:
            kind = k.kind_of(obj)
            name = obj["metadata"]["name"]
            # A first provisioning creates without looking: the reads would double the
            # requests when a thousand nodes arrive at once. A create costs the API server
            # two thirds of a server-side apply (no YAML body, no merge of field sets).
            live = kube.get(kind, name, ns) if provisioned_before else None
            if live is None and not provisioned_before:
                try:
                    live_objects[obj["kind"]] = kube.create(obj)
                    changed.append(f"{obj['kind']} {ns}/{name}")
                    continue
                except Conflict:  # there already (a restart before the status was written)
                    live = kube.get(kind, name, ns)
            if live is not None and is_subset(obj, live):
                live_objects[obj["kind"]] = live
                continue
            if live is not None:
                # What a create set must be the apply's, or what it leaves out would stay.
                kube.claim_for_apply(live)
            live_objects[obj["kind"]] = kube.apply(obj)
            what = f"{obj['kind']} {ns}/{name}"
            changed.append(what)
            if provisioned_before and not spec_changed:
                verb = "recreated" if live is None else "restored"
                METRICS.drift_repairs.inc()
                self.events.post(body, "Warning", "DriftRepaired", f"{verb} {what} changed by hand")
        where = f"{len(changed)} object(s) in {target.description}, namespace {ns}"
        if changed and not provisioned_before:
            first.append(f"provisioned {where}")
        elif changed and spec_changed:
            self.events.post(body, "Normal", "Updated", f"updated {where}")
        return changed, live_objects

    def _caller_tokens(
        self,
        body: Obj,
        node: DataSpaceNode,
        kube: Kube,
        provisioned_before: bool,
        spec_changed: bool,
        first: list[str],
    ) -> dict[str, str]:
        """The callers' token Secrets (caller_tokens.py); their digests for the agent."""
        digests, done = caller_tokens.ensure(kube, node, likely_missing=not provisioned_before)
        if provisioned_before and spec_changed:  # a caller taken off the list
            done += [f"deleted {what}" for what in caller_tokens.remove_stale(kube, node)]
        if done and not provisioned_before:
            first.append("caller tokens: " + ", ".join(done))
        elif done:
            self.events.post(body, "Normal", "CallerTokens", "; ".join(done))
        return digests

    def _ensure_namespace(self, kube: Kube, node: DataSpaceNode, ns: str) -> None:
        if kube.get(k.NAMESPACE, ns) is not None:
            return
        obj = render.namespace(node)
        obj["metadata"]["annotations"] = {
            CREATED_NAMESPACE_ANNOTATION: f"{node.namespace}/{node.name}"
        }
        try:
            kube.create(obj)
        except ApiError as exc:
            if exc.status != 409:
                raise

    def ensure_gateway_tls(
        self, body: Obj, node: DataSpaceNode, target: Target, now: dt.datetime
    ) -> None:
        never_provisioned = (body.get("status") or {}).get("observedGeneration") is None
        why = self.gateway_tls.ensure(target.kube, node, now, likely_missing=never_provisioned)
        if why is not None and why != "issued":
            self.events.post(
                body, "Normal", "GatewayCertificateRenewed", f"gateway TLS certificate: {why}"
            )
