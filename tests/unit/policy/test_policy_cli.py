"""`trustspace policy` on config/samples (no cluster needed), and the Rego export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from policy_support import SAMPLES, samples

from trustspace.cli import main
from trustspace.crypto import SM2PrivateKey
from trustspace.policy.bundle import PolicyBundle
from trustspace.policy.compiler import compile_bundle
from trustspace.policy.decision import TransferRequest
from trustspace.policy.engine import PolicyEngine
from trustspace.policy.rego import REGO_MODULE, expected, rego_data, rego_input

pytestmark = pytest.mark.unit


def run(*args: str) -> str:
    result = CliRunner().invoke(main, ["policy", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_explain_vn_important_health_to_the_hub() -> None:
    out = run(
        "explain",
        "--from",
        "vn-hanoi",
        "--to",
        "cn-nanning",
        "--class",
        "important",
        "--category",
        "health",
        "-f",
        str(SAMPLES),
    )
    assert out.startswith("Decision: REVIEW (channel review)")
    assert "wins  policy vn-core-important/vn-core-and-important (priority 900, review)" in out
    assert "loses policy health-review/health-records (priority 300, review)" in out
    assert "binds profile VN/core-important-approval" in out and "seed 002 part 二(一)" in out
    assert "it cannot take the automatic channel" in out
    assert "approval by vn-ministry-of-public-security and vn-prime-ministers-office" in out


def test_explain_says_what_would_allow_an_uncovered_flow() -> None:
    out = run(
        "explain",
        "--from",
        "th-rayong",
        "--to",
        "vn-hanoi",
        "--class",
        "public",
        "--category",
        "tourism",
        "-f",
        str(SAMPLES),
    )
    assert out.startswith("Decision: DENY")
    assert "a rule allowing public/tourism from th-rayong (TH, Thailand) to vn-hanoi" in out


def test_explain_names_the_missing_certification() -> None:
    args = [
        "explain",
        "--from",
        "sg-singapore",
        "--to",
        "cn-nanning",
        "--class",
        "internal",
        "--category",
        "personal",
        "-f",
        str(SAMPLES),
    ]
    out = run(*args)
    assert out.startswith("Decision: DENY")
    assert "certification apec-cbpr held by recipient cn-nanning" in out
    out = run(*args, "--certification", "apec-cbpr", "-o", "json")
    doc = json.loads(out)
    assert doc["decision"]["verdict"] == "allow"
    assert doc["categories"][0]["profileRules"][0]["owner"] == "SG"


def test_explain_a_deny_names_the_priority_to_beat() -> None:
    out = run(
        "explain",
        "--from",
        "cn-nanning",
        "--to",
        "my-kuantan",
        "--class",
        "core",
        "--category",
        "health",
        "-f",
        str(SAMPLES),
    )
    assert "a review rule for core/health" in out and "with priority > 300" in out
    assert "profile CN/ftz-outbound-negative-list" in out


def test_compile_writes_a_signed_envelope(tmp_path: Path) -> None:
    key = SM2PrivateKey.generate()
    (tmp_path / "hub.pem").write_bytes(key.to_pem())
    out = run(
        "compile",
        "-f",
        str(SAMPLES),
        "--version",
        "7",
        "--sign-key",
        str(tmp_path / "hub.pem"),
        "--out",
        str(tmp_path / "b.json"),
    )
    bundle = PolicyBundle.open_envelope((tmp_path / "b.json").read_bytes(), [key.public_key()])
    assert bundle.version == 7
    assert f"bundle version 7 sm3 {bundle.hash}" in out
    assert "vn-core-important: Compiled" in out


def test_profiles_listing_and_diff(tmp_path: Path) -> None:
    out = run("profiles")
    assert "VN Viet Nam (data-protection law: not-stated)" in out
    assert "KH Cambodia (data-protection law: none)" in out
    (tmp_path / "o.yaml").write_text(
        "jurisdiction: VN\nrules: [{id: core-important-approval, disabled: true}]\n"
    )
    (tmp_path / "empty.yaml").write_text("[]\n")
    out = run(
        "profiles",
        "--profiles",
        str(tmp_path / "o.yaml"),
        "--against",
        str(tmp_path / "empty.yaml"),
    )
    assert out.strip() == "VN: rule core-important-approval: disabled: false -> true"


def test_rego_export_mirrors_the_flow_table() -> None:
    policies, nodes = samples()
    engine = PolicyEngine(compile_bundle(policies, nodes, version=1).bundle)
    data = rego_data(engine)
    vn = data["flows"]["vn-hanoi"]["cn-nanning"]["important"]["trade"]
    assert vn["action"] == "review"
    assert sorted(vn["approvals"][0]) == [
        "vn-ministry-of-public-security",
        "vn-prime-ministers-office",
    ]
    assert "th-rayong" not in data["flows"].get("th-rayong", {})
    assert "package trustspace.policy" in REGO_MODULE
    req = TransferRequest.of(
        "sg-singapore", "cn-nanning", "internal", ["personal"], payload_size=10
    )
    assert rego_input(req)["payloadSize"] == 10
    assert expected(engine, req) == {"action": "deny", "approvers": []}
