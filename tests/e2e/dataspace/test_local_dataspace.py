"""The whole data space as `make run` starts it, and the kubectl plugin against it.

Three control planes, the operator, the collector and three agents as real processes; the
plugin is the installed `kubectl-trustspace`, found by the real kubectl on PATH. With the
TRUSTSPACE_E2E_* variables set (hack/kind-up.sh prints them) the same tests drive that data
space instead, kind clusters included (tests/support/dataspace.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from support.dataspace import EvidenceInputs, ExternalDataSpace, external_requested
from support.operator import wait_for
from trustspace.kube import kinds as k
from trustspace.quickstart.space import LocalDataSpace
from trustspace.quickstart.walkthrough import allowed_transfer, reviewed_transfer

VENV_BIN = Path(sys.executable).parent
Space = LocalDataSpace | ExternalDataSpace


@pytest.fixture(scope="module")
def space(k8s_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Space]:
    if external_requested():
        external = ExternalDataSpace(k8s_bin / "kubectl", tmp_path_factory.mktemp("external"))
        try:
            yield external.start()
        finally:
            external.stop()
        return
    messages: list[str] = []
    local = LocalDataSpace(tmp_path_factory.mktemp("dataspace"), messages.append)
    try:
        local.start(k8s_bin)
        local.wait_ready(timeout=240)
        yield local
    except BaseException:
        logs = local.root / "logs"
        for log in sorted(logs.glob("*.log")) if logs.exists() else []:
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
        raise
    finally:
        local.stop()


def _plugin(space: Space, k8s_bin: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        PATH=f"{VENV_BIN}{os.pathsep}{k8s_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        KUBECONFIG=str(space.kubeconfig()),
    )
    return subprocess.run(
        [str(k8s_bin / "kubectl"), "trustspace", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_every_node_is_ready_for_real(space: Space) -> None:
    for name, conds in space.ready_nodes().items():
        for type_ in ("Ready", "KeyReady", "AgentReady", "PolicySynced"):
            assert conds.get(type_) == "True", f"{name}: {type_} is {conds.get(type_)}"
    ns = space.namespace
    node = space.kube().get(k.DATASPACENODE, "vn-hanoi", ns)
    assert node is not None
    # The keys live only in the edge cluster; the hub holds public facts.
    edge_ns = space.node_namespace("vn-hanoi")
    for secret in ("vn-hanoi-sm2-key", "vn-hanoi-gateway-tls"):
        assert space.kube("edge-vn").get(k.SECRET, secret, edge_ns) is not None
        assert space.kube().get(k.SECRET, secret, ns) is None
    assert node["status"]["lastHeartbeatTime"]
    # The agent runs what the operator rendered: its peers are its MirrorLinks' destinations.
    config = space.kube("edge-vn").get(k.CONFIG_MAP, "vn-hanoi-agent-config", edge_ns)
    assert config is not None
    rendered = yaml.safe_load(config["data"]["agent.yaml"])
    hub = space.kube().get(k.DATASPACENODE, "cn-nanning", ns)
    assert hub is not None
    assert rendered["gateway"]["peers"] == {"cn-nanning": hub["spec"]["endpoint"]}


def test_plugin_status_draws_the_tree(space: Space, k8s_bin: Path) -> None:
    out = _plugin(space, k8s_bin, "status", "-n", space.namespace)
    assert out.returncode == 0, out.stderr
    assert f"data space {space.namespace}" in out.stdout
    for node in ("cn-nanning", "vn-hanoi", "th-rayong"):
        assert node in out.stdout
    assert out.stdout.count("Ready") >= 3


def test_transfers_through_the_gateways_and_reviews(space: Space, k8s_bin: Path) -> None:
    delivered = allowed_transfer(space, lambda _: None)
    assert delivered["destination"] == "cn-nanning"
    reviewed = reviewed_transfer(space, lambda _: None)
    assert reviewed["state"] == "Delivered"
    assert len(reviewed["approvals"]) == 2
    listed = _plugin(
        space,
        k8s_bin,
        "reviews",
        "list",
        "--agent",
        space.agents["th-rayong"].api,
        "--state",
        "Delivered",
        "-o",
        "json",
    )
    assert listed.returncode == 0, listed.stderr
    assert reviewed["id"] in listed.stdout


def test_plugin_policy_explain_reads_the_live_objects(space: Space, k8s_bin: Path) -> None:
    out = _plugin(
        space,
        k8s_bin,
        "policy",
        "explain",
        "-n",
        space.namespace,
        "--kubeconfig",
        str(space.kubeconfig()),
        "--from",
        "vn-hanoi",
        "--to",
        "cn-nanning",
        "--class",
        "important",
        "--category",
        "health",
    )
    assert out.returncode == 0, out.stderr
    assert "review" in out.stdout.lower()
    assert "vn-prime-ministers-office" in out.stdout


def test_plugin_rotates_a_key_and_the_agent_keeps_streaming(space: Space, k8s_bin: Path) -> None:
    kube = space.kube()
    before = kube.get(k.DATASPACENODE, "vn-hanoi", space.namespace)["status"]["activeKey"]["keyId"]  # type: ignore[index]
    out = _plugin(
        space, k8s_bin, "keys", "rotate", "vn-hanoi", "-n", space.namespace, "--timeout", "90"
    )
    assert out.returncode == 0, out.stderr
    after = out.stdout.strip()
    assert after and after != before

    def streaming_on_new_key() -> bool:
        body = kube.get(k.DATASPACENODE, "vn-hanoi", space.namespace) or {}
        conds = {c["type"]: c for c in (body.get("status") or {}).get("conditions", [])}
        beat_ok = conds.get("AgentReady", {}).get("status") == "True"
        return beat_ok and conds.get("Ready", {}).get("status") == "True"

    # A kubelet refreshes the mounted key within about a minute; the quickstart's at once.
    wait_for("node Ready after rotation", streaming_on_new_key, timeout=150)
    # A transfer signed with the new key is accepted by the hub's gateway.
    assert allowed_transfer(space, lambda _: None)["state"] == "Delivered"


def _verified_inputs(space: Space, k8s_bin: Path, tmp_path: Path) -> EvidenceInputs:
    """What an auditor holds, once `audit verify` has passed over the hub's whole record."""
    if isinstance(space, ExternalDataSpace):
        inputs = space.evidence_inputs(tmp_path)
        verify = space.audit_verify(inputs)
    else:
        hub_gateway = space.agents["cn-nanning"].config["gateway"]
        inputs = EvidenceInputs(
            trust_bundle=Path(hub_gateway["trustBundleFile"]),
            hub_key=Path(hub_gateway["hubPublicKeyFile"]),
            collector_ca=space.ca_file,
            collector_url=f"https://127.0.0.1:{space.collector_port}",
            node_key=space.agents["th-rayong"].key_file,
        )
        verify = _plugin(
            space, k8s_bin, "audit", "verify",
            "--db", str(space.root / "collector" / "audit.db"),
            "--trust-bundle", str(inputs.trust_bundle), "--hub-key", str(inputs.hub_key),
        )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    return inputs


def test_audit_verify_and_offline_evidence(space: Space, k8s_bin: Path, tmp_path: Path) -> None:
    inputs = _verified_inputs(space, k8s_bin, tmp_path)
    document = tmp_path / "certificate-of-origin.pdf"
    document.write_bytes(b"%PDF-1.7 certificate of origin, Rayong -> Qinzhou, 20 t rice seed")
    register = _plugin(
        space,
        k8s_bin,
        "evidence",
        "register",
        str(document),
        "--collector",
        inputs.collector_url,
        "--node",
        "th-rayong",
        "--key",
        str(inputs.node_key),
        "--ca",
        str(inputs.collector_ca),
        "-o",
        str(tmp_path / "receipt.json"),
    )
    assert register.returncode == 0, register.stderr
    receipt = tmp_path / "receipt.json"
    assert json.loads(receipt.read_text())
    ok = _plugin(
        space,
        k8s_bin,
        "evidence",
        "verify",
        str(receipt),
        str(document),
        "--hub-key",
        str(inputs.hub_key),
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    document.write_bytes(document.read_bytes() + b" forged")
    bad = _plugin(
        space,
        k8s_bin,
        "evidence",
        "verify",
        str(receipt),
        str(document),
        "--hub-key",
        str(inputs.hub_key),
    )
    assert bad.returncode != 0


def test_a_new_link_reaches_the_running_source_agent(space: Space) -> None:
    """Last in this file: the source's agent is replaced (a rollout) to pick up its new peer."""
    ns = space.namespace
    link = {
        "apiVersion": "trustspace.io/v1alpha1",
        "kind": "MirrorLink",
        "metadata": {"name": "th-rayong-to-vn-hanoi", "namespace": ns},
        "spec": {
            "source": {"name": "th-rayong"},
            "destination": {"name": "vn-hanoi"},
            "datasets": [
                {"name": "tracks", "classification": "internal", "categories": ["logistics"]}
            ],
            "policyRefs": [{"name": "logistics-auto"}],
        },
    }
    hub = space.kube()
    hub.apply(link)
    edge_ns = space.node_namespace("th-rayong")
    vn = hub.get(k.DATASPACENODE, "vn-hanoi", ns)
    assert vn is not None

    def rendered_peers() -> dict[str, str]:
        cm = space.kube("edge-th").get(k.CONFIG_MAP, "th-rayong-agent-config", edge_ns) or {}
        text = (cm.get("data") or {}).get("agent.yaml") or "{}"
        return dict((yaml.safe_load(text).get("gateway") or {}).get("peers") or {})

    try:
        wait_for(
            "the new peer in th-rayong's rendered config",
            lambda: rendered_peers().get("vn-hanoi") == vn["spec"]["endpoint"],
            timeout=60,
        )
        if isinstance(space, LocalDataSpace):
            agent = space.agents["th-rayong"]
            wait_for(
                "th-rayong's agent restarted with the new peer",
                lambda: "vn-hanoi" in agent.config["gateway"]["peers"],
                timeout=30,
            )

            def healthy() -> bool:
                try:
                    with urllib.request.urlopen(f"{agent.api}/healthz", timeout=5) as resp:  # noqa: S310
                        return bool(resp.status == 200)
                except OSError:
                    return False

            wait_for("th-rayong's agent serving again", healthy, timeout=60)
    finally:
        hub.delete(k.MIRRORLINK, "th-rayong-to-vn-hanoi", ns)
