"""A full edge store refuses new operations (never drops events); evidence receipts verify
offline and fail on any changed byte."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from support.audit_harness import TRUSTSPACE, Harness, Loader, assert_exactly_once, wait_for

NODE = "edge-my"


def test_full_store_fails_closed_then_recovers(harness: Harness) -> None:
    harness.start_agent(NODE, storeMaxBytes=128 * 1024)  # the hub is down: nothing is acked
    loader = Loader(harness, NODE, total=10**6, chunk=20)
    accepted = 0
    status, body = 0, {}
    for i in range(2000):  # bounded: the quota is hit long before
        status, body = harness.post_events(NODE, [f"q{i}-{j}" for j in range(20)])
        if status != 201:
            break
        accepted += 20
        loader.acked.extend(f"q{i}-{j}" for j in range(20))
    assert status == 507, body
    assert body["code"] == "audit_backpressure"
    assert "refusing new operations rather than dropping audit events" in body["message"]
    assert accepted > 0
    assert harness.agent_last_seq(NODE) == accepted  # nothing dropped, nothing half-written
    # Still refused on retry; metrics say so.
    assert harness.post_events(NODE, ["again"])[0] == 507
    import urllib.request

    with urllib.request.urlopen(harness.agent_url(NODE) + "/metrics") as resp:  # noqa: S310
        metrics = resp.read().decode()
    assert "trustspace_agent_audit_backpressure 1.0" in metrics
    # The hub comes back, acknowledges, the agent compacts, appends work again.
    harness.start_collector()
    wait_for(lambda: harness.post_events(NODE, ["after"])[0] == 201, 60, "appends to resume")
    loader.acked.append("after")
    wait_for(lambda: harness.hub_last_seq(NODE) == harness.agent_last_seq(NODE), 60, "catch up")
    assert_exactly_once(harness, NODE, loader)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TRUSTSPACE, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_evidence_receipt_verifies_offline_and_detects_changes(
    harness: Harness, tmp_path: Path
) -> None:
    harness.start_collector()
    key = tmp_path / "edge.key"
    key.write_bytes(harness.node_keys[NODE].to_pem())
    doc = tmp_path / "certificate-of-origin.pdf"
    doc.write_bytes(b"%PDF-1.7 certificate of origin, Qinzhou -> Kuantan, 42 t rice seed\n")
    receipts = []
    for name in ("first", "second"):
        other = tmp_path / f"{name}.txt"
        other.write_text(f"another document {name}\n")
        receipts.append(other)
    for path in [*receipts, doc]:
        reg = _cli(
            "evidence",
            "register",
            str(path),
            "--collector",
            harness.url,
            "--node",
            NODE,
            "--key",
            str(key),
            "--ca",
            str(harness.ca),
            "--name",
            path.name,
        )
        assert reg.returncode == 0, reg.stderr
    receipt = Path(str(doc) + ".receipt.json")
    ok = _cli("evidence", "verify", str(receipt), str(doc), "--hub-key", str(harness.hub_pub_file))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK: leaf 2 of ")

    # One changed byte in the document.
    changed = tmp_path / "changed.pdf"
    data = bytearray(doc.read_bytes())
    data[10] ^= 0x01
    changed.write_bytes(bytes(data))
    bad = _cli(
        "evidence", "verify", str(receipt), str(changed), "--hub-key", str(harness.hub_pub_file)
    )
    assert bad.returncode == 1 and "digest" in bad.stderr

    # One changed byte anywhere meaningful in the receipt.
    original = json.loads(receipt.read_text())
    for field in ("leafIndex", "treeSize", "inclusionProof", "checkpoint", "document"):
        tampered = json.loads(json.dumps(original))
        if field in ("leafIndex", "treeSize"):
            tampered[field] += 1
        elif field == "inclusionProof":
            tampered[field][0] = tampered[field][0][::-1]
        elif field == "checkpoint":
            lines = tampered[field].split("\n")
            lines[1] = str(int(lines[1]) + 1)
            tampered[field] = "\n".join(lines)
        else:
            tampered[field]["registeredAt"] = "2000-01-01T00:00:00.000000Z"
        path = tmp_path / f"tampered-{field}.json"
        path.write_text(json.dumps(tampered))
        res = _cli(
            "evidence", "verify", str(path), str(doc), "--hub-key", str(harness.hub_pub_file)
        )
        assert res.returncode == 1, (field, res.stdout)
    # Another hub key does not vouch for it.
    from trustspace.crypto import SM2PrivateKey

    other_hub = tmp_path / "other-hub.pub"
    other_hub.write_bytes(SM2PrivateKey.generate().public_key().to_pem())
    assert (
        _cli("evidence", "verify", str(receipt), str(doc), "--hub-key", str(other_hub)).returncode
        == 1
    )
