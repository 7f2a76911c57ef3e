"""Caller authentication as rendered for an in-cluster agent: apps get tokens, the agent gets
digests, and the agent's own check accepts exactly those tokens from another Pod."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from trustspace.api.dataspacenode import DataSpaceNode
from trustspace_agent.config import AgentConfig
from trustspace_agent.gateway.callers import CallerRefused, Callers
from trustspace_operator import caller_tokens, render


def _node(**gateway: Any) -> DataSpaceNode:
    return DataSpaceNode.from_body(
        {
            "metadata": {"name": "vn-hanoi", "namespace": "space", "uid": "u-1"},
            "spec": {
                "role": "edge",
                "jurisdiction": "VN",
                "endpoint": "https://gw.example:8443",
                "capabilities": {"gateway": gateway},
            },
        }
    )


def _by_kind(objs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objs}


def test_listed_callers_get_a_digest_file_mounted_where_the_agent_looks() -> None:
    node = _node(callers=["crm", "exporter"])
    tokens = {"crm": caller_tokens.new_token(), "exporter": caller_tokens.new_token()}
    digests = {c: caller_tokens.digest(t) for c, t in tokens.items()}
    objs = _by_kind(
        render.desired_objects(node, image="i", collector_url="https://c", caller_digests=digests)
    )
    kinds = [kind for kind, _ in objs]
    # The digests exist before the StatefulSet that mounts them.
    assert kinds.index("Secret") < kinds.index("StatefulSet")

    config = AgentConfig.model_validate(
        yaml.safe_load(objs[("ConfigMap", "vn-hanoi-agent-config")]["data"]["agent.yaml"])
    )
    assert config.gateway is not None
    assert str(config.gateway.caller_tokens_file) == "/var/run/trustspace/callers/callers.yaml"

    secret = objs[("Secret", "vn-hanoi-callers")]
    text = base64.b64decode(secret["data"]["callers.yaml"]).decode()
    assert yaml.safe_load(text) == {c: [d] for c, d in digests.items()}
    for token in tokens.values():
        assert token not in text  # digests only: the agent's Pod cannot call as an app
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "u-1"

    pod = objs[("StatefulSet", "vn-hanoi-agent")]["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "callers")
    assert volume["secret"] == {"secretName": "vn-hanoi-callers", "defaultMode": 0o400}
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "callers")
    assert Path(mount["mountPath"]) / "callers.yaml" == config.gateway.caller_tokens_file

    rules = objs[("Role", "vn-hanoi-agent")]["rules"]
    assert "vn-hanoi-callers" in rules[0]["resourceNames"]
    assert not any("vn-hanoi-caller-" in n for r in rules for n in r["resourceNames"])


def test_without_callers_the_agent_serves_its_own_pod_only() -> None:
    for node in (_node(), _node(enabled=False, callers=["crm"])):
        objs = render.desired_objects(node, image="i", collector_url="https://c")
        assert all(o["kind"] != "Secret" for o in objs)
        cm = next(o for o in objs if o["kind"] == "ConfigMap")
        settings = yaml.safe_load(cm["data"]["agent.yaml"])
        assert "callerTokensFile" not in (settings.get("gateway") or {})
        sts = next(o for o in objs if o["kind"] == "StatefulSet")
        assert all(v["name"] != "callers" for v in sts["spec"]["template"]["spec"]["volumes"])


def test_adding_a_caller_rolls_the_agent_but_a_new_token_does_not() -> None:
    def digest_of(node: DataSpaceNode, token: str) -> str:
        digests = {c: caller_tokens.digest(token) for c in render.callers(node)}
        objs = render.desired_objects(
            node, image="i", collector_url="https://c", caller_digests=digests
        )
        sts = next(o for o in objs if o["kind"] == "StatefulSet")
        return str(sts["spec"]["template"]["metadata"]["annotations"]["trustspace.io/config-hash"])

    token = caller_tokens.new_token()
    before = digest_of(_node(), token)
    with_caller = digest_of(_node(callers=["crm"]), token)
    assert with_caller != before
    # A rotated token reaches the running agent through the mounted file (it re-reads it).
    assert digest_of(_node(callers=["crm"]), caller_tokens.new_token()) == with_caller


def test_the_agent_accepts_the_issued_token_from_another_pod(tmp_path: Path) -> None:
    node = _node(callers=["crm"])
    token = caller_tokens.new_token()
    token_secret = render.caller_token_secret(node, "crm", token)
    assert token_secret["metadata"]["labels"][render.CALLER_LABEL] == "crm"
    assert caller_tokens.read_token(token_secret) == token
    secret = render.callers_secret(node, {"crm": caller_tokens.digest(token)})
    path = tmp_path / "callers.yaml"
    path.write_bytes(base64.b64decode(secret["data"]["callers.yaml"]))

    callers = Callers(path)
    assert callers.identify({"Authorization": f"Bearer {token}"}, "10.244.1.7") == "crm"
    with pytest.raises(CallerRefused) as refused:
        callers.identify({}, "10.244.1.7")
    assert refused.value.code == "missing_credentials"
    with pytest.raises(CallerRefused) as refused:
        callers.identify({"Authorization": f"Bearer {caller_tokens.new_token()}"}, "10.244.1.7")
    assert refused.value.code == "unknown_caller"


@pytest.mark.parametrize(
    "data",
    [
        None,
        {},
        {"token": ""},
        {"token": "!!not base64"},
        {"token": base64.b64encode(b"short").decode()},
        {"token": base64.b64encode(b"x" * 40 + b" y").decode()},
    ],
)
def test_an_unusable_token_is_not_kept(data: dict[str, str] | None) -> None:
    assert caller_tokens.read_token(None if data is None else {"data": data}) is None


def test_a_token_set_by_hand_is_kept() -> None:
    token = "A" * 43 + "="  # what `openssl rand -base64 32` prints
    assert caller_tokens.read_token({"data": {"token": base64.b64encode(token.encode())}}) == token
