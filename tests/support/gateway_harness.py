"""Real gateways for the e2e tests: the hub (CN) and four edges, each an agent process with its
HTTPS inbound port, the sample policies compiled into a hub-signed bundle, approver keys.

Extends :class:`support.audit_harness.Harness` (TLS CA, keys, trust bundle, collector, process
cleanup). The test bundle differs from the samples in one way, on purpose: the breakers of
``logistics-auto`` and ``sg-personal-data`` trip after 5 denials, cool down in 2 s and resume
automatically, so the recovery can be watched within a test (the CRD minimum is 1 minute).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from support.audit_harness import Harness, free_port, wait_for
from trustspace.cli.policy import read_manifests
from trustspace.crypto import SM2PrivateKey, sm3
from trustspace.policy import PolicyBundle, compile_bundle, load_profiles
from trustspace.trust import NodeKey, TrustedNode, build_bundle, sign_bundle
from trustspace_agent.gateway.approvals import sign_approval

SAMPLES = Path(__file__).resolve().parents[2] / "config" / "samples"
NODES = {
    "cn-nanning": "CN",
    "vn-hanoi": "VN",
    "sg-singapore": "SG",
    "my-kuantan": "MY",
    "th-rayong": "TH",
}
APPROVERS = (
    "hub-compliance-office",
    "source-data-protection-officer",
    "recipient-data-protection-officer",
    "vn-prime-ministers-office",
    "vn-ministry-of-public-security",
    "my-national-security-assessor",
    "cn-outbound-data-security-assessor",
    "source-park-authority",
    "destination-park-authority",
)
PSEUDONYM_SECRET = b"test-health-pseudonym-secret-32b"
#: An auto-channel transfer (VN -> CN logistics) for tests about who may call, not what.
LOGISTICS_TRANSFER = {
    "metadata": {
        "source": "vn-hanoi",
        "destination": "cn-nanning",
        "classification": "internal",
        "categories": ["logistics"],
    },
    "records": [{"container": "MSKU1234565"}],
}


def test_bundle_data(version: int = 1, breaker: dict[str, Any] | None = None) -> dict[str, Any]:
    policies, nodes = read_manifests([str(SAMPLES)])
    data = copy.deepcopy(
        dict(compile_bundle(policies, nodes, load_profiles(), version=version).bundle.data)
    )
    for policy in data["policies"]:
        if policy["name"] in ("logistics-auto", "sg-personal-data"):
            policy["circuitBreaker"] = breaker or {
                "enabled": True,
                "deniedBurst": {"count": 5, "window": "1m"},
                "invalidSignatures": {"count": 3, "window": "10m"},
                "volumeSpike": {"ratioPercent": 500, "window": "5m", "baselineWindow": "24h"},
                "coolDown": "2s",
                "resume": "Automatic",
            }
    return data


class GatewayHarness(Harness):
    def __init__(self, root: Path, nodes: dict[str, str] | None = None) -> None:
        self.jurisdictions = nodes or NODES
        super().__init__(root, tuple(self.jurisdictions))
        self.approver_keys = {a: SM2PrivateKey.generate() for a in APPROVERS}
        self.approvers_file = root / "approvers.yaml"
        self.approvers_file.write_text(
            yaml.safe_dump(
                {a: [k.public_key().to_pem().decode()] for a, k in self.approver_keys.items()}
            )
        )
        secrets_dir = root / "secrets" / "health-pseudonym-key"
        secrets_dir.mkdir(parents=True)
        (secrets_dir / "sm3-hmac-key").write_bytes(PSEUDONYM_SECRET)
        self.callers_file = root / "callers.yaml"
        self.tokens: dict[str, str] = {}
        self.token("tests")
        self.policy_file = root / "policy-bundle.json"
        self.write_policy(test_bundle_data())
        self.inbound_ports = {n: free_port() for n in self.jurisdictions}

    def token(self, caller: str) -> str:
        """The bearer token of ``caller``, issued (added to the callers file) on first use;
        the gateways pick a new token up at once."""
        if caller not in self.tokens:
            self.tokens[caller] = secrets.token_urlsafe(24)
            digests = {c: [sm3(t.encode()).hex()] for c, t in self.tokens.items()}
            tmp = self.callers_file.with_suffix(".tmp")
            tmp.write_text(yaml.safe_dump(digests))
            tmp.replace(self.callers_file)
        return self.tokens[caller]

    def write_bundle(self) -> None:
        self.serial += 1
        start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        nodes = [
            TrustedNode(
                name="hub",
                role="hub",
                jurisdiction="CN",
                keys=[NodeKey.of(self.hub_key.public_key(), start)],
            )
        ] + [
            TrustedNode(
                name=n,
                role="hub" if n == "cn-nanning" else "edge",
                jurisdiction=self.jurisdictions[n],
                keys=[NodeKey.of(k.public_key(), start), *self.extra_keys[n]],
            )
            for n, k in self.node_keys.items()
        ]
        bundle = build_bundle(nodes, serial=self.serial, hub_key_id=self.hub_key.key_id)
        tmp = self.bundle_file.with_suffix(".tmp")
        tmp.write_text(sign_bundle(bundle, self.hub_key).to_json())
        tmp.replace(self.bundle_file)

    def write_policy(self, data: dict[str, Any], key: SM2PrivateKey | None = None) -> None:
        tmp = self.policy_file.with_suffix(".tmp")
        tmp.write_bytes(PolicyBundle(data).signed_envelope(key or self.hub_key))
        tmp.replace(self.policy_file)

    def gateway_config(self, node: str, **overrides: Any) -> dict[str, Any]:
        return {
            "policyBundleFile": str(self.policy_file),
            "trustBundleFile": str(self.bundle_file),
            "hubPublicKeyFile": str(self.hub_pub_file),
            "inboundHost": "127.0.0.1",
            "inboundPort": self.inbound_ports[node],
            "tlsCertFile": str(self.cert),
            "tlsKeyFile": str(self.tls_key),
            "peers": {n: f"https://127.0.0.1:{p}" for n, p in self.inbound_ports.items()},
            "certifications": [],
            "approverKeysFile": str(self.approvers_file),
            "secretsDir": str(self.root / "secrets"),
            "callerTokensFile": str(self.callers_file),
            "stateDir": str(self.root / node / "gateway"),
            "maxPayloadBytes": 2 * 1024 * 1024,
            "linkReportSeconds": 1.0,
            "reviewSweepSeconds": 0.5,
            **overrides,
        }

    def start_gateway(self, node: str, gateway: dict[str, Any] | None = None, **agent: Any) -> None:
        self.start_agent(node, gateway=self.gateway_config(node, **(gateway or {})), **agent)

    # -- requests to an agent's local API -----------------------------------------------------

    def call(
        self,
        node: str,
        method: str,
        path: str,
        body: bytes | dict[str, Any] | list[Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
        auth: bool = True,
    ) -> tuple[int, Any]:
        """A call as the caller ``X-Trustspace-Caller`` names (default ``tests``), with its
        bearer token unless ``auth`` is false or ``headers`` has an Authorization already."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        hdrs = {"Content-Type": "application/json"} if not isinstance(body, bytes) else {}
        hdrs.update(headers or {})
        if auth and "Authorization" not in hdrs:
            hdrs["Authorization"] = "Bearer " + self.token(hdrs.get("X-Trustspace-Caller", "tests"))
        req = urllib.request.Request(  # noqa: S310 - loopback test URLs
            self.agent_url(node) + path, data=data, headers=hdrs, method=method
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw or b"{}")
            except ValueError:
                return exc.code, {"raw": raw.decode(errors="replace")}

    def transfer(
        self,
        source: str,
        destination: str,
        classification: str,
        categories: list[str],
        records: list[dict[str, Any]] | None = None,
        caller: str = "tests",
        **meta: Any,
    ) -> tuple[int, Any]:
        body = {
            "metadata": {
                "source": source,
                "destination": destination,
                "classification": classification,
                "categories": categories,
                **meta,
            },
            "records": records or [{"n": 1}],
        }
        return self.call(source, "POST", "/v1/transfers", body, {"X-Trustspace-Caller": caller})

    def approve(
        self,
        node: str,
        tid: str,
        approver: str,
        decision: str = "approve",
        key: SM2PrivateKey | None = None,
    ) -> tuple[int, Any]:
        status, held = self.call(node, "GET", f"/v1/reviews/{tid}")
        assert status == 200, held
        approval = sign_approval(
            key or self.approver_keys[approver], tid, approver, decision, held["payloadDigest"]
        )
        return self.call(node, "POST", f"/v1/reviews/{tid}/approvals", approval)

    def inbox(self, node: str, tid: str) -> tuple[int, Any]:
        return self.call(node, "GET", f"/v1/inbox/{tid}")

    def audit_events(self, node: str) -> dict[int, dict[str, Any]]:
        """The node's events, from the hub (shipped) and the agent (not yet compacted)."""
        import sqlite3

        events: dict[int, dict[str, Any]] = {}
        sources = [(self.root / node / "audit.db", "SELECT body FROM events", ())]
        if self.db.exists():
            sources.append((self.db, "SELECT body FROM events WHERE node=?", (node,)))
        for db, query, args in sources:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
                try:
                    rows = conn.execute(query, args).fetchall()
                except sqlite3.OperationalError:
                    continue
            for (body,) in rows:
                event = json.loads(body)
                events[event["seq"]] = event
        return events

    def audit_actions(self, node: str, subject: str) -> list[str]:
        events = self.audit_events(node)
        return [events[s]["action"] for s in sorted(events) if events[s]["subject"] == subject]

    def wait_audit(self, node: str, subject: str, action: str, timeout: float = 10) -> None:
        wait_for(
            lambda: action in self.audit_actions(node, subject),
            timeout,
            f"{action} for {subject} on {node}",
        )
