"""The trustspace.io API against a real kube-apiserver: validation, defaults, status, kubectl."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from api_cases import Case, bases, invalid_cases, invalid_updates
from trustspace.api import DataSpaceNode, parse_resource, set_condition
from trustspace.api.constants import NodeConditionType, NodePhase, NodeReason
from trustspace.api.dataspacenode import ActiveKey, AuditStatus, DataSpaceNodeStatus
from trustspace.api.schema import reflow
from trustspace.localk8s import LocalCluster

pytestmark = pytest.mark.integration

SAMPLES = Path(__file__).resolve().parents[3] / "config" / "samples"
KINDS = {
    "DataSpaceNode": "dataspacenode",
    "TransferPolicy": "transferpolicy",
    "MirrorLink": "mirrorlink",
}


@pytest.fixture(scope="module")
def shared_ns(cluster: LocalCluster, crds: list[str]) -> Iterator[str]:
    """One namespace for the many server-side dry runs (nothing is stored in it)."""
    name = f"t-api-dry-run-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def _create(
    cluster: LocalCluster, namespace: str, manifest: dict[str, Any], *, dry_run: bool
) -> Any:
    args = ["create", "-n", namespace, "-o", "json", "-f", "-"]
    if dry_run:
        args.insert(1, "--dry-run=server")
    return cluster.kubectl(*args, input=yaml.safe_dump(manifest), check=False)


def _names_field(stderr: str, field: str) -> bool:
    # `spec.x: Invalid value ...`, `spec.x: Required value`, `unknown field "spec.x"`.
    return re.search(rf'(?<![\w.\]]){re.escape(field)}[:"]', stderr) is not None


@pytest.mark.parametrize("name", sorted(bases()))
def test_base_manifests_are_accepted(cluster: LocalCluster, shared_ns: str, name: str) -> None:
    result = _create(cluster, shared_ns, bases()[name], dry_run=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("case", invalid_cases(), ids=lambda c: c.name)
def test_api_server_rejects_invalid_manifest(
    cluster: LocalCluster, shared_ns: str, case: Case
) -> None:
    result = _create(cluster, shared_ns, case.manifest(bases()), dry_run=True)
    assert result.returncode != 0, f"accepted: {result.stdout}"
    assert _names_field(result.stderr, case.field), result.stderr
    if case.message:
        assert case.message in result.stderr


@pytest.mark.parametrize("case", invalid_updates(), ids=lambda c: c.name)
def test_api_server_rejects_changes_to_immutable_fields(
    cluster: LocalCluster, namespace: str, crds: list[str], case: Case
) -> None:
    base = bases()[case.base]
    created = _create(cluster, namespace, base, dry_run=False)
    assert created.returncode == 0, created.stderr
    ref = f"{KINDS[base['kind']]}/{base['metadata']['name']}"
    result = cluster.kubectl(
        "patch", "-n", namespace, ref, "--type=merge", "-p", json.dumps(case.patch), check=False
    )
    assert result.returncode != 0, result.stdout
    assert _names_field(result.stderr, case.field), result.stderr
    assert case.message and case.message in result.stderr


@pytest.mark.parametrize("name", sorted(bases()))
def test_server_defaults_equal_model_defaults(
    cluster: LocalCluster, namespace: str, crds: list[str], name: str
) -> None:
    manifest = bases()[name]
    result = _create(cluster, namespace, manifest, dry_run=False)
    assert result.returncode == 0, result.stderr
    stored = json.loads(result.stdout)
    assert stored["spec"] == parse_resource(manifest).to_body()["spec"]
    assert parse_resource(stored).name == manifest["metadata"]["name"]


def test_every_sample_applies(cluster: LocalCluster, namespace: str, crds: list[str]) -> None:
    docs = [d for p in sorted(SAMPLES.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text())]
    cluster.kubectl("apply", "-n", namespace, "-f", str(SAMPLES))
    listed = cluster.kubectl("get", "trustspace", "-n", namespace, "-o", "name").stdout.split()
    expected = {f"{KINDS[d['kind']]}.trustspace.io/{d['metadata']['name']}" for d in docs}
    assert set(listed) == expected
    assert {d["kind"] for d in docs} == set(KINDS)


def _header(cluster: LocalCluster, namespace: str, resource: str) -> list[str]:
    out = cluster.kubectl("get", resource, "-n", namespace, "-o", "wide").stdout
    return re.split(r"\s{2,}", out.splitlines()[0].strip())


def test_printer_columns(cluster: LocalCluster, namespace: str, crds: list[str]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", str(SAMPLES))
    assert _header(cluster, namespace, "dsn")[:8] == [
        "NAME",
        "ROLE",
        "JURISDICTION",
        "PHASE",
        "READY",
        "KEY",
        "KEY AGE",
        "LAST AUDIT",
    ]
    assert _header(cluster, namespace, "tp")[:5] == [
        "NAME",
        "PRIORITY",
        "ACCEPTED",
        "BUNDLE",
        "SYNCED",
    ]
    assert _header(cluster, namespace, "ml")[:7] == [
        "NAME",
        "SOURCE",
        "DESTINATION",
        "STATE",
        "BREAKER",
        "REASON",
        "LAST SYNC",
    ]
    row = cluster.kubectl("get", "dsn", "vn-hanoi", "-n", namespace, "--no-headers").stdout
    assert row.split()[:3] == ["vn-hanoi", "edge", "VN"]


def test_api_resources_short_names_and_category(cluster: LocalCluster, crds: list[str]) -> None:
    out = cluster.kubectl("api-resources", "--api-group=trustspace.io", "-o", "wide").stdout
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(rows) == {"dataspacenodes", "transferpolicies", "mirrorlinks"}
    for plural, short in (
        ("dataspacenodes", "dsn"),
        ("transferpolicies", "tp"),
        ("mirrorlinks", "ml"),
    ):
        assert f" {short} " in rows[plural]
        assert "trustspace" in rows[plural].split()[-1]


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_kubectl_explain_prints_model_descriptions(cluster: LocalCluster, crds: list[str]) -> None:
    deadline = time.monotonic() + 60  # OpenAPI publication trails CRD establishment
    while True:
        result = cluster.kubectl("explain", "dataspacenode.spec.keyRotation", check=False)
        if result.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert result.returncode == 0, result.stderr
    spec = DataSpaceNode.model_fields["spec"].annotation
    assert spec is not None
    field = spec.model_fields["key_rotation"]
    output = _flat(result.stdout)
    assert _flat(reflow(field.description or "")) in output
    for name in ("algorithm", "policy", "rotateEvery", "gracePeriod"):
        assert re.search(rf"\b{name}\s+<string>", result.stdout), name
    assert "Defaults to `168h`" in output


def test_status_is_a_subresource(cluster: LocalCluster, namespace: str, crds: list[str]) -> None:
    manifest = bases()["edge"]
    assert _create(cluster, namespace, manifest, dry_run=False).returncode == 0
    ref = f"dataspacenode/{manifest['metadata']['name']}"
    now = datetime.now(UTC).replace(microsecond=0)
    status = DataSpaceNodeStatus(
        phase=NodePhase.READY,
        observed_generation=1,
        conditions=set_condition(
            [], NodeConditionType.READY, True, NodeReason.RECONCILED, observed_generation=1, now=now
        ),
        active_key=ActiveKey(
            key_id="vn-2026-01", fingerprint="ab" * 32, not_before=now - timedelta(days=3)
        ),
        audit=AuditStatus(last_sequence=42, last_event_time=now, lag="2s"),
    )
    patch = DataSpaceNode.from_body(manifest).model_copy(update={"status": status}).status_patch()
    cluster.kubectl(
        "patch",
        "-n",
        namespace,
        ref,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(patch),
    )
    stored = json.loads(cluster.kubectl("get", "-n", namespace, ref, "-o", "json").stdout)
    assert stored["metadata"]["generation"] == 1  # status writes do not bump generation
    assert stored["status"] == patch["status"]
    assert DataSpaceNode.from_body(stored).status == status

    row = cluster.kubectl("get", "-n", namespace, ref, "--no-headers").stdout.split()
    assert row[3:6] == ["Ready", "True", "vn-2026-01"]

    # The main resource ignores status; spec changes bump generation.
    changed = {
        **stored,
        "spec": {**stored["spec"], "displayName": "Hanoi"},
        "status": {"phase": "Failed"},
    }
    cluster.kubectl("replace", "-n", namespace, "-f", "-", input=json.dumps(changed))
    again = json.loads(cluster.kubectl("get", "-n", namespace, ref, "-o", "json").stdout)
    assert again["metadata"]["generation"] == 2
    assert again["status"]["phase"] == "Ready"


@pytest.mark.parametrize(
    ("status", "field"),
    [
        (
            {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "Yes",
                        "reason": "Reconciled",
                        "message": "",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    }
                ]
            },
            "status.conditions[0].status",
        ),
        (
            {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "not a reason",
                        "message": "",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    }
                ]
            },
            "status.conditions[0].reason",
        ),
        (
            {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "Reconciled",
                        "message": "",
                        "lastTransitionTime": "yesterday",
                    }
                ]
            },
            "status.conditions[0].lastTransitionTime",
        ),
        (
            {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "Reconciled",
                        "message": "",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    }
                ]
                * 2
            },
            "status.conditions[1]",
        ),
        (
            {
                "previousKeys": [
                    {"keyId": f"k{i}", "retireAt": "2026-01-01T00:00:00Z"} for i in range(9)
                ]
            },
            "status.previousKeys",
        ),
        (
            {
                "activeKey": {
                    "keyId": "k1",
                    "fingerprint": "not-hex",
                    "notBefore": "2026-01-01T00:00:00Z",
                }
            },
            "status.activeKey.fingerprint",
        ),
    ],
    ids=[
        "condition-status",
        "condition-reason",
        "condition-time",
        "duplicate-condition",
        "too-many-previous-keys",
        "fingerprint-not-sm3",
    ],
)
def test_api_server_validates_status(
    cluster: LocalCluster, namespace: str, crds: list[str], status: dict[str, Any], field: str
) -> None:
    manifest = bases()["hub"]
    assert _create(cluster, namespace, manifest, dry_run=False).returncode == 0
    result = cluster.kubectl(
        "patch",
        "-n",
        namespace,
        f"dataspacenode/{manifest['metadata']['name']}",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
        check=False,
    )
    assert result.returncode != 0, result.stdout
    assert _names_field(result.stderr, field), result.stderr
