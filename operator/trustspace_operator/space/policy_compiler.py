"""Compiling a data space's TransferPolicies into the signed policy bundle (B7, R1-R4).

Per namespace (one data space): the TransferPolicies, the DataSpaceNodes and the
jurisdiction profiles (built in, plus ConfigMaps labelled `trustspace.io/profiles=true`,
picked up live: R4) become one deterministic bundle. Its version rises only when its
content changes; the hub key signs it; the space controller (space_controller.py) ships it beside
the trust bundle; each TransferPolicy's status says whether it was accepted and compiled,
into which bundle, how many nodes it selects and how many already run it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trustspace import clock
from trustspace.api.conditions import condition_dict
from trustspace.api.constants import (
    PolicyConditionType,
    PolicyReason,
)
from trustspace.crypto import SM2PrivateKey
from trustspace.kube import ApiError, Kube, Obj
from trustspace.kube import kinds as k
from trustspace.policy import compile_bundle, diff_profiles, load_profiles
from trustspace.policy.compiler import CompileResult, NodeInput, PolicyReport
from trustspace.policy.profile_loader import ProfileError, ProfileSet, overrides_from_configmap

log = logging.getLogger(__name__)
PROFILES_LABEL = "trustspace.io/profiles"
#: On the trust ConfigMap beside the bundle: what was published, so a restarted operator
#: continues the version sequence. Agents refuse a bundle older than the one they enforce, so
#: a restart that began again at version 1 left every running agent on the old policy.
POLICY_VERSION_ANNOTATION = "trustspace.io/policy-version"
POLICY_CONTENT_HASH_ANNOTATION = "trustspace.io/policy-content-hash"
POLICY_HASH_ANNOTATION = "trustspace.io/policy-hash"
POLICY_COMPILED_AT_ANNOTATION = "trustspace.io/policy-compiled-at"
STATUS_MANAGER = "trustspace-operator"


@dataclass
class CompiledSpace:
    version: int
    content_hash: str
    hash: str
    envelope: str
    compiled_at: str


class PolicyCompiler:
    def __init__(self, hub: Kube) -> None:
        self.hub = hub
        self._spaces: dict[str, CompiledSpace] = {}
        self._profiles: dict[str, ProfileSet] = {}
        self._loaded: dict[str, tuple[tuple[tuple[str, str], ...], ProfileSet]] = {}

    def current(self, namespace: str) -> CompiledSpace | None:
        return self._spaces.get(namespace)

    def profile_versions(self, namespace: str) -> tuple[tuple[str, str], ...]:
        """Names and versions of the namespace's profile override ConfigMaps."""
        maps = self.hub.list(k.CONFIG_MAP, namespace, labels={PROFILES_LABEL: "true"})
        return tuple(
            sorted((c["metadata"]["name"], c["metadata"]["resourceVersion"]) for c in maps)
        )

    def profiles(self, namespace: str, warn: Any) -> ProfileSet:
        """Built-in profiles with the namespace's override ConfigMaps applied (R4)."""
        overrides = []
        maps = sorted(
            self.hub.list(k.CONFIG_MAP, namespace, labels={PROFILES_LABEL: "true"}),
            key=lambda c: c["metadata"]["name"],
        )
        versions = tuple((c["metadata"]["name"], c["metadata"]["resourceVersion"]) for c in maps)
        cached = self._loaded.get(namespace)
        if cached is not None and cached[0] == versions:
            return cached[1]  # parsing every profile again on each publication is costly
        for cm in maps:
            overrides.extend(overrides_from_configmap(cm))
        try:
            profiles = load_profiles(overrides=overrides)
        except ProfileError as exc:
            warn("ProfilesInvalid", f"jurisdiction profile overrides ignored: {exc}")
            profiles = load_profiles()
        old = self._profiles.get(namespace)
        if old is not None and old.hash != profiles.hash:
            changes = diff_profiles(old, profiles)
            warn("ProfilesChanged", "jurisdiction rules changed: " + "; ".join(changes[:10]))
        self._profiles[namespace] = profiles
        self._loaded[namespace] = (versions, profiles)
        return profiles

    def compile(
        self,
        namespace: str,
        nodes: Sequence[NodeInput],
        policies: list[Obj],
        hub_key: SM2PrivateKey,
        warn: Any,
    ) -> tuple[CompiledSpace, CompileResult]:
        profiles = self.profiles(namespace, warn)
        probe = compile_bundle(policies, nodes, profiles, version=1, namespace=namespace)
        previous = self._spaces.get(namespace) or self._from_configmap(namespace)
        if previous is not None and previous.content_hash == probe.bundle.content_hash:
            return previous, probe
        version = (previous.version + 1) if previous else 1
        result = compile_bundle(policies, nodes, profiles, version=version, namespace=namespace)
        compiled = CompiledSpace(
            version=version,
            content_hash=result.bundle.content_hash,
            hash=result.bundle.hash,
            envelope=result.bundle.signed_envelope(hub_key).decode(),
            compiled_at=clock.rfc3339(),
        )
        self._spaces[namespace] = compiled
        log.info("compiled policy bundle %d of %s (%d policies)", version, namespace, len(policies))
        return compiled, result

    def _from_configmap(self, namespace: str) -> CompiledSpace | None:
        """After a restart: continue the version sequence from what was published."""
        from trustspace_operator import render

        live = self.hub.get(k.CONFIG_MAP, render.TRUST_BUNDLE_CONFIGMAP, namespace)
        ann = ((live or {}).get("metadata") or {}).get("annotations") or {}
        if POLICY_VERSION_ANNOTATION not in ann:
            return None
        envelope = (live or {}).get("data", {}).get(render.POLICY_BUNDLE_KEY, "")
        return CompiledSpace(
            version=int(ann[POLICY_VERSION_ANNOTATION]),
            content_hash=ann.get(POLICY_CONTENT_HASH_ANNOTATION, ""),
            hash=ann.get(POLICY_HASH_ANNOTATION, ""),
            envelope=envelope,
            compiled_at=ann.get(POLICY_COMPILED_AT_ANNOTATION, clock.rfc3339()),
        )

    def write_status(
        self,
        namespace: str,
        policies: list[Obj],
        compiled: CompiledSpace,
        result: CompileResult,
        nodes: list[Obj],
    ) -> None:
        running = sum(
            1
            for n in nodes
            if ((n.get("status") or {}).get("policyBundle") or {}).get("hash") == compiled.hash
        )
        for body in policies:
            report = result.reports.get(body["metadata"]["name"])
            if report is None:
                continue
            status = _status(body, report, compiled, running)
            if _same(body.get("status") or {}, status):
                continue
            try:
                self.hub.apply_status(
                    k.TRANSFERPOLICY,
                    body["metadata"]["name"],
                    namespace,
                    status,
                    field_manager=STATUS_MANAGER,
                )
            except ApiError as exc:
                if exc.status != 404:  # a policy deleted meanwhile needs no status
                    log.warning("TransferPolicy status not written: %s", exc)


def _condition(
    body: Obj, type_: str, ok: bool, reason: str, message: str, gen: int | None
) -> dict[str, Any]:
    current = (body.get("status") or {}).get("conditions")
    return condition_dict(current, type_, ok, reason, message, observed_generation=gen)


def _status(body: Obj, report: PolicyReport, compiled: CompiledSpace, running: int) -> Obj:
    gen = body["metadata"].get("generation")
    accepted_reason = PolicyReason.ACCEPTED if report.accepted else report.reason
    status: Obj = {
        "observedGeneration": gen,
        "conditions": [
            _condition(
                body,
                PolicyConditionType.ACCEPTED,
                report.accepted,
                str(accepted_reason),
                "the policy is valid and selects nodes" if report.accepted else report.message,
                gen,
            ),
            _condition(
                body,
                PolicyConditionType.COMPILED,
                report.compiled,
                str(report.reason),
                report.message,
                gen,
            ),
        ],
        "selectedNodes": report.selected_nodes,
        "syncedNodes": running if report.compiled else 0,
        "conflicts": [
            c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in report.conflicts
        ],
    }
    if report.compiled:
        status["bundle"] = {
            "version": compiled.version,
            "hash": compiled.hash,
            "compiledAt": compiled.compiled_at,
        }
    return status


def _same(current: Obj, new: Obj) -> bool:
    for key, value in new.items():
        if key == "conditions":
            have = {c["type"]: c for c in current.get("conditions", [])}
            for cond in value:
                old = have.get(cond["type"], {})
                if any(
                    old.get(f) != cond.get(f)
                    for f in ("status", "reason", "message", "observedGeneration")
                ):
                    return False
        elif current.get(key) != value:
            return False
    return "bundle" in new or "bundle" not in current
