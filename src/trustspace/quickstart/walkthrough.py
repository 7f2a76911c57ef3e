"""Two transfers through the running data space: one on the auto channel, one reviewed.

Both go through the real gateways: the source decides from the signed policy bundle,
desensitises, encrypts with SM4-GCM, signs with SM2, audits, and delivers to the hub's
gateway over HTTPS; the reviewed one waits for SM2-signed approvals first (B5, B7).
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from trustspace.quickstart.space import TRUSTSPACE, Say

#: How long an approval may wait for the approver's key to reach the agent: at once here,
#: but a kubelet refreshes mounted ConfigMaps only every minute or so.
KEY_PROPAGATION_SECONDS = 150.0


class _Agent(Protocol):
    @property
    def api(self) -> str: ...


class DataSpace(Protocol):
    """What the walk-through needs: the agents' APIs and the approvers' private keys (a
    local data space, or one in kind reached through port-forwards)."""

    @property
    def agents(self) -> Mapping[str, _Agent]: ...

    def approver_key_file(self, name: str) -> Path: ...


def _call(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(  # noqa: S310 - loopback URL of our own agent
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            return int(resp.status), json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read() or b"{}")


def allowed_transfer(space: DataSpace, say: Say) -> dict[str, Any]:
    vn = space.agents["vn-hanoi"]
    say("transfer 1: logistics tracks VN -> CN (internal): the automatic channel (B7)")
    status, answer = _call(
        "POST",
        f"{vn.api}/v1/transfers",
        {
            "metadata": {
                "source": "vn-hanoi",
                "destination": "cn-nanning",
                "classification": "internal",
                "categories": ["logistics"],
                "purpose": "quickstart: container tracking",
            },
            "records": [
                {
                    "container": "MSKU1234565",
                    "position": "21.03,105.85",
                    "at": "2026-11-23T09:00:00Z",
                }
            ],
        },
    )
    if status != 201 or answer.get("state") != "Delivered":
        raise RuntimeError(f"the automatic transfer was not delivered: {status} {answer}")
    say(f"  delivered at once, payload SM3 {answer['payloadDigest'][:16]}...")
    return answer


def reviewed_transfer(space: DataSpace, say: Say) -> dict[str, Any]:
    th = space.agents["th-rayong"]
    say("transfer 2: health records TH -> CN: held in the sandbox for signed approvals (B5, B7)")
    status, held = _call(
        "POST",
        f"{th.api}/v1/transfers",
        {
            "metadata": {
                "source": "th-rayong",
                "destination": "cn-nanning",
                "classification": "internal",
                "categories": ["health"],
                "purpose": "quickstart: twin-park occupational health study",
            },
            "records": [
                {
                    "patient": {
                        "name": "Somchai Prasert",
                        "idNumber": "3-1012-00456-78-9",
                        "birthDate": "1980-04-12",
                        "address": "12 Sukhumvit Rd, Rayong",
                    },
                    "diagnosis": "J45.9",
                }
            ],
        },
    )
    if status != 202:
        raise RuntimeError(f"the health transfer was not held for review: {status} {held}")
    tid = held["id"]
    for group in held["approvals"]:
        names = ", ".join(group["approvers"])
        say(f"  held {tid[:12]}: needs {group['minApprovals']} of {names}")
    for approver in approvers_to_ask(held["approvals"]):
        _approve(th.api, tid, approver, space.approver_key_file(approver))
        say(f"    {approver} approved (SM2-signed)")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _, view = _call("GET", f"{th.api}/v1/reviews/{tid}")
        if view.get("state") == "Delivered":
            say("  delivered after the approvals; identifiers were masked before it left")
            return view
        if view.get("state") in ("Rejected", "Expired"):
            raise RuntimeError(f"the reviewed transfer ended {view['state']}: {view}")
        time.sleep(0.5)
    raise RuntimeError(f"the reviewed transfer was not delivered in 30s: {view}")


def approvers_to_ask(groups: list[dict[str, Any]]) -> list[str]:
    """Whom to ask, in order, so that every group has its minimum. One approval counts in
    every group that names its approver, and an approver decides once (a second decision is
    refused as a duplicate): groups that share an approver need only what is still missing."""
    asked: list[str] = []
    for group in groups:
        missing = group["minApprovals"] - len(set(asked) & set(group["approvers"]))
        asked += [a for a in group["approvers"] if a not in asked][: max(missing, 0)]
    return asked


def _approve(agent: str, tid: str, approver: str, key: Path) -> None:
    deadline = time.monotonic() + KEY_PROPAGATION_SECONDS
    while True:
        done = subprocess.run(
            [
                *TRUSTSPACE,
                "reviews",
                "approve",
                tid,
                "--agent",
                agent,
                "--approver",
                approver,
                "--key",
                str(key),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode == 0:
            return
        if "not registered" not in done.stderr or time.monotonic() > deadline:
            raise RuntimeError(f"approval by {approver} failed: {done.stderr.strip()}")
        time.sleep(2)


def walk_through(space: DataSpace, say: Say) -> None:
    allowed_transfer(space, say)
    reviewed_transfer(space, say)
