"""A network partition between edge and hub loses nothing and doubles nothing.

The agent and the collector each run in their own network namespace, joined by one veth
pair (private 10.x addresses that exist only inside these two namespaces). The test cuts
the link (both ends down) while events keep being appended, waits, restores it, and checks
that the hub ends up with every acknowledged event exactly once, in an intact chain.

Needs ``ip netns add`` (root or CAP_SYS_ADMIN + CAP_NET_ADMIN); skipped with the reason
otherwise. The namespaces are deleted even when the test fails.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.audit_harness import Harness, Loader, assert_exactly_once, wait_for

NODE = "edge-my"
PARTITION_SECONDS = float(os.environ.get("TRUSTSPACE_E2E_PARTITION_SECONDS", "20"))


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


@dataclass(frozen=True)
class Link:
    hub_ns: str
    edge_ns: str
    hub_if: str
    edge_if: str
    hub_ip: str
    edge_ip: str

    def set(self, state: str) -> None:
        ip("-n", self.hub_ns, "link", "set", self.hub_if, state)
        ip("-n", self.edge_ns, "link", "set", self.edge_if, state)


@pytest.fixture
def link() -> Iterator[Link]:
    if shutil.which("ip") is None:
        pytest.skip("iproute2 `ip` is not installed")
    tag = secrets.token_hex(3)
    hub_ns, edge_ns = f"ts-hub-{tag}", f"ts-edge-{tag}"
    probe = ip("netns", "add", hub_ns, check=False)
    if probe.returncode != 0:
        pytest.skip(f"`ip netns add` is not permitted here: {probe.stderr.strip()}")
    octet = int(tag[:2], 16)
    link = Link(hub_ns, edge_ns, f"tsh{tag}", f"tse{tag}", f"10.213.{octet}.1", f"10.213.{octet}.2")
    try:
        ip("netns", "add", edge_ns)
        ip("link", "add", link.hub_if, "type", "veth", "peer", "name", link.edge_if)
        ip("link", "set", link.hub_if, "netns", hub_ns)
        ip("link", "set", link.edge_if, "netns", edge_ns)
        ip("-n", hub_ns, "addr", "add", f"{link.hub_ip}/30", "dev", link.hub_if)
        ip("-n", edge_ns, "addr", "add", f"{link.edge_ip}/30", "dev", link.edge_if)
        for ns in (hub_ns, edge_ns):
            ip("-n", ns, "link", "set", "lo", "up")
        link.set("up")
        yield link
    finally:
        # Deleting a namespace deletes its end of the veth, and with it the pair.
        for ns in (edge_ns, hub_ns):
            ip("netns", "del", ns, check=False)
        ip("link", "del", link.hub_if, check=False)


@pytest.fixture
def partitioned(tmp_path: Path, link: Link) -> Iterator[Harness]:
    h = Harness(
        tmp_path,
        hub_host=link.hub_ip,
        netns={"collector": link.hub_ns, NODE: link.edge_ns},
    )
    try:
        yield h
    finally:
        h.close()


def test_partition_loses_nothing_and_doubles_nothing(partitioned: Harness, link: Link) -> None:
    h = partitioned
    h.start_collector()
    # Short request timeout: a request stuck on the cut link fails and is retried soon.
    h.start_agent(NODE, requestTimeoutSeconds=3.0, backoffMaxSeconds=1.0)
    loader = Loader(h, NODE, total=10**9, chunk=50, pause=0.02).start()
    try:
        wait_for(lambda: h.hub_last_seq(NODE) > 500, 60, "stream over the veth link")

        link.set("down")
        cut_at = h.hub_last_seq(NODE)
        acked_at_cut = len(loader.acked)
        deadline = time.monotonic() + PARTITION_SECONDS
        while time.monotonic() < deadline:  # the partition itself, bounded
            h.check_alive(NODE)
            h.check_alive("collector")
            time.sleep(0.5)
        held = h.hub_last_seq(NODE)
        # A batch in flight when the link went down may still have landed; nothing after.
        assert held - cut_at <= 500, (cut_at, held)
        assert len(loader.acked) > acked_at_cut + 1000, "appends stopped during the partition"
        assert not loader.failed_requests, loader.statuses
        assert h.agent_last_seq(NODE) > held, "the agent did not buffer"
        wait_for(lambda: h.hub_last_seq(NODE) == held, 5, "hub to stay still while cut")

        link.set("up")
        wait_for(lambda: h.hub_last_seq(NODE) > held, 60, "shipping to resume after restore")
    finally:
        loader.stop()
    wait_for(
        lambda: h.hub_last_seq(NODE) == h.agent_last_seq(NODE) > 0,
        180,
        "hub to catch up",
        step=0.5,
    )
    assert_exactly_once(h, NODE, loader)
    result = h.audit_verify()
    assert result.returncode == 0, result.stdout + result.stderr
