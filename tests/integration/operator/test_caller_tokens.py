"""Apps in other Pods call the agent with operator-issued tokens: each listed caller gets a
token Secret, the agent gets only the digests, and hand edits are repaired like other drift."""

from __future__ import annotations

import base64
import ipaddress
import json
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.gateway_harness import LOGISTICS_TRANSFER, GatewayHarness
from support.operator import OperatorRunner, apply, events_for, node_manifest, wait_for
from trustspace.crypto import sm3
from trustspace.kube import Kube
from trustspace.kube import kinds as k
from trustspace.localk8s import LocalCluster
from trustspace_agent.config import AgentConfig
from trustspace_agent.gateway.callers import CallerRefused, Callers


def _secret(kube: Kube, ns: str, name: str, key: str) -> str | None:
    secret = kube.get(k.SECRET, name, ns)
    raw = ((secret or {}).get("data") or {}).get(key)
    return base64.b64decode(raw).decode() if raw else None


def _digests(kube: Kube, ns: str) -> dict[str, list[str]] | None:
    text = _secret(kube, ns, "vn-hanoi-callers", "callers.yaml")
    return yaml.safe_load(text) if text else None


def _tokens(kube: Kube, ns: str, callers: list[str]) -> dict[str, str] | None:
    tokens = {c: _secret(kube, ns, f"vn-hanoi-caller-{c}", "token") for c in callers}
    return {c: t for c, t in tokens.items() if t} if all(tokens.values()) else None


def _matches(kube: Kube, ns: str, callers: list[str]) -> dict[str, str] | None:
    """The callers' tokens once the agent's file lists exactly their digests."""
    tokens = _tokens(kube, ns, callers)
    if tokens is None or _digests(kube, ns) != {
        c: [sm3(t.encode()).hex()] for c, t in tokens.items()
    }:
        return None
    return tokens


def test_callers_get_tokens_and_the_agent_only_their_digests(
    cluster: LocalCluster, kube: Kube, namespace: str, operator: OperatorRunner, tmp_path: Path
) -> None:
    ns = namespace
    operator.start()
    apply(
        cluster,
        node_manifest("vn-hanoi", ns, capabilities={"gateway": {"callers": ["crm", "exporter"]}}),
    )
    tokens = wait_for(
        "caller tokens and their digests",
        lambda: _matches(kube, ns, ["crm", "exporter"]),
        timeout=60,  # the operator's start included
    )
    seen = set(tokens.values())
    assert len(seen) == 2
    for caller in ("crm", "exporter"):
        secret = kube.get(k.SECRET, f"vn-hanoi-caller-{caller}", ns) or {}
        labels = secret["metadata"]["labels"]
        assert labels["trustspace.io/caller"] == caller
        assert labels["trustspace.io/node"] == "vn-hanoi"
        assert secret["metadata"]["ownerReferences"][0]["name"] == "vn-hanoi"

    # The agent is told where the digests are, and its Pod mounts them there.
    cm = kube.get(k.CONFIG_MAP, "vn-hanoi-agent-config", ns) or {}
    config = AgentConfig.model_validate(yaml.safe_load(cm["data"]["agent.yaml"]))
    assert config.gateway is not None and config.gateway.caller_tokens_file is not None
    sts = kube.get(k.STATEFUL_SET, "vn-hanoi-agent", ns) or {}
    pod = sts["spec"]["template"]["spec"]
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "callers")
    assert Path(mount["mountPath"]) / "callers.yaml" == config.gateway.caller_tokens_file
    volume = next(v for v in pod["volumes"] if v["name"] == "callers")
    assert volume["secret"]["secretName"] == "vn-hanoi-callers"

    # The agent's own check, on the file as rendered: a token works from another Pod's
    # address, no token does not.
    path = tmp_path / "callers.yaml"
    path.write_text(_secret(kube, ns, "vn-hanoi-callers", "callers.yaml") or "")
    check = Callers(path)
    assert check.identify({"Authorization": f"Bearer {tokens['crm']}"}, "10.244.0.9") == "crm"
    try:
        check.identify({}, "10.244.0.9")
        raise AssertionError("a call without a token was accepted")
    except CallerRefused as refused:
        assert refused.code == "missing_credentials"

    # A token Secret deleted by hand: a new token, and the agent's file follows.
    kube.delete(k.SECRET, "vn-hanoi-caller-crm", ns)
    tokens = wait_for(
        "a new crm token",
        lambda: (t := _matches(kube, ns, ["crm", "exporter"])) and t["crm"] not in seen and t,
    )
    seen |= set(tokens.values())

    # Rotated by hand: the new token is the one that counts.
    rotated = base64.b64encode(b"R" * 43 + b"=").decode()
    cluster.kubectl(
        "patch", "secret", "vn-hanoi-caller-exporter", "-n", ns, "--type", "merge",
        "-p", json.dumps({"data": {"token": rotated}}),
    )  # fmt: skip
    wait_for(
        "the rotated token listed",
        lambda: (t := _matches(kube, ns, ["crm", "exporter"])) and t["exporter"] == "R" * 43 + "=",
    )

    # The digests file edited by hand is restored.
    cluster.kubectl(
        "patch", "secret", "vn-hanoi-callers", "-n", ns, "--type", "merge",
        "-p", json.dumps({"data": {"callers.yaml": base64.b64encode(b"{}").decode()}}),
    )  # fmt: skip
    wait_for("the digests restored", lambda: _matches(kube, ns, ["crm", "exporter"]))

    # A caller taken off the list loses its Secret and its digest.
    apply(cluster, node_manifest("vn-hanoi", ns, capabilities={"gateway": {"callers": ["crm"]}}))
    wait_for(
        "exporter removed",
        lambda: (
            kube.get(k.SECRET, "vn-hanoi-caller-exporter", ns) is None
            and _matches(kube, ns, ["crm"])
        ),
    )

    # No callers at all: no Secrets left, and the agent serves its own Pod only.
    apply(cluster, node_manifest("vn-hanoi", ns))

    def unlisted() -> bool:
        left = [n for n in ("vn-hanoi-caller-crm", "vn-hanoi-callers") if kube.get(k.SECRET, n, ns)]
        cm = kube.get(k.CONFIG_MAP, "vn-hanoi-agent-config", ns) or {}
        # The volume the StatefulSet was created with goes too: a field the operator set at
        # creation and no longer renders is removed, not left to a mount of a gone Secret.
        sts = kube.get(k.STATEFUL_SET, "vn-hanoi-agent", ns) or {}
        volumes = [v["name"] for v in sts["spec"]["template"]["spec"]["volumes"]]
        return (
            not left
            and "callerTokensFile" not in cm["data"]["agent.yaml"]
            and ("callers" not in volumes)
        )

    wait_for("the callers' Secrets gone", unlisted)

    # Tokens never leave their Secrets: not in status, events or logs.
    body = json.dumps(kube.get(k.DATASPACENODE, "vn-hanoi", ns))
    messages = " ".join(e["message"] for e in events_for(cluster, ns, "vn-hanoi"))
    logs = operator.logs()
    for token in seen | {"R" * 43 + "="}:
        assert token not in body
        assert token not in messages
        assert token not in logs
    assert "vn-hanoi-caller-crm" in messages  # what was done is told, by name


def _own_address() -> str | None:
    """An address of this machine that is not loopback, as another Pod's calls would come
    from (a UDP connect sends nothing; it only picks the route's source address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.254", 9))
        except OSError:
            return None
        addr = str(s.getsockname()[0])
    return None if ipaddress.ip_address(addr).is_loopback else addr


def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
    req = urllib.request.Request(  # noqa: S310 - a test agent on this machine
        url, json.dumps(body).encode(), {"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_a_real_agent_serves_an_app_elsewhere_with_its_token_only(
    cluster: LocalCluster, kube: Kube, namespace: str, operator: OperatorRunner, tmp_path: Path
) -> None:
    """A real agent process with the callers file exactly as the operator rendered it, its
    local API on all addresses as in a Pod, called from a non-loopback address."""
    address = _own_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to call from")
    operator.start()
    apply(
        cluster,
        node_manifest("vn-hanoi", namespace, capabilities={"gateway": {"callers": ["crm"]}}),
    )
    tokens = wait_for("the crm token", lambda: _matches(kube, namespace, ["crm"]), timeout=60)
    rendered = tmp_path / "callers.yaml"
    rendered.write_text(_secret(kube, namespace, "vn-hanoi-callers", "callers.yaml") or "")

    (tmp_path / "agent").mkdir()
    h = GatewayHarness(tmp_path / "agent", {"vn-hanoi": "VN", "cn-nanning": "CN"})
    try:
        h.start_gateway("cn-nanning")  # the destination, with the harness's own callers
        h.start_gateway("vn-hanoi", {"callerTokensFile": str(rendered)}, listenHost="0.0.0.0")  # noqa: S104
        url = f"http://{address}:{h.agent_ports['vn-hanoi']}/v1/transfers"
        status, answer = _post(url, LOGISTICS_TRANSFER, {})
        assert (status, answer["code"]) == (401, "missing_credentials"), answer
        status, answer = _post(url, LOGISTICS_TRANSFER, {"Authorization": "Bearer " + "x" * 43})
        assert (status, answer["code"]) == (401, "unknown_caller"), answer
        status, answer = _post(
            url, LOGISTICS_TRANSFER, {"Authorization": f"Bearer {tokens['crm']}"}
        )
        assert status == 201, answer
        actors = {
            e["actor"] for e in h.audit_events("vn-hanoi").values() if e["subject"] == answer["id"]
        }
        assert actors == {"crm"}
    finally:
        h.close()
