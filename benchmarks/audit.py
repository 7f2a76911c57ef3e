"""Audit streaming end to end (issue 6), against rsyslog RELP with a disk-assisted queue.

    python benchmarks/audit.py [--events 50000] [--latency-seconds 20] [--update-docs FILE]

In one run, on loopback:

1. **trustspace throughput**: a real agent and a real collector (test harness: TLS, SM2
   keys, signed trust bundle). Events are appended through the agent's local API (requests
   of 500, four at a time, encoded before the clock starts as rsyslog's input is); the
   clock stops when the hub has verified and durably stored the last one (agent SQLite and
   hub SQLite both ``synchronous=FULL``; every batch SM2-signed and verified, SM3 chain and
   Merkle root checked, global Merkle log appended). The agent's and the collector's CPU
   time per event are printed too: steadier than events/s on a shared machine.
2. **trustspace latency at a fixed 1,000 events/s**: 10 events every 10 ms for
   ``--latency-seconds``; per event, from the append request to the hub's commit (seen by
   polling the hub database every 2 ms). p50/p99.
3. **rsyslog**: two ``rsyslogd`` processes with their own config, pid file and work dir.
   The sender takes the same event JSON lines on ``imtcp`` (one persistent TCP connection:
   rsyslog's cheapest input, no file polling) and forwards with ``omrelp`` through an action
   queue ``LinkedList`` + ``queue.filename`` (disk-assisted) + ``queue.saveOnShutdown``; the
   receiver takes ``imrelp`` and writes ``omfile``. The clock stops when the receiver's file
   holds every line. Delivered lines are counted and every sequence number checked once.
   This is rsyslog's best case: no fsync anywhere, no signing, no verification.

Target: trustspace >= 1.0x rsyslog's events/s, zero loss on both, p99 <= 500 ms at 1,000/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))

from audit_harness import Harness, free_port, wait_for  # noqa: E402

from trustspace_agent.config import AgentConfig  # noqa: E402

SECTION = "## Audit (issue 6)"
NODE = "edge-my"
TARGET_RATIO = 1.0
TARGET_P99_MS = 500.0
CHUNK = 500
CONCURRENCY = 4
DEFAULTS = AgentConfig(node=NODE, storePath="-", keyFile="-", collectorUrl="-", caFile="-")


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def event(i: int) -> dict[str, Any]:
    return {
        "actor": "loadgen",
        "action": "transfer.requested",
        "subject": f"e{i}",
        "classification": "internal",
        "policyVersion": 3,
    }


class HubWatch:
    """Polls the hub's last stored seq; records when each value was first seen."""

    def __init__(self, db: Path, node: str, period: float = 0.002) -> None:
        self.db, self.node, self.period = db, node, period
        self.seen: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def last(self) -> int:
        return self.seen[-1][1] if self.seen else 0

    def start(self) -> HubWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
                row = conn.execute(
                    "SELECT last_seq FROM nodes WHERE node=?", (self.node,)
                ).fetchone()
                value = int(row[0]) if row else 0
                if value > self.last():
                    self.seen.append((time.perf_counter(), value))
            except sqlite3.Error:
                conn = None
            time.sleep(self.period)
        if conn is not None:
            conn.close()

    def time_of(self, seq: int) -> float | None:
        # seen is sorted by both time and value
        lo, hi = 0, len(self.seen)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.seen[mid][1] >= seq:
                hi = mid
            else:
                lo = mid + 1
        return self.seen[lo][0] if lo < len(self.seen) else None


async def _post(session: aiohttp.ClientSession, url: str, body: bytes) -> Any:
    headers = {"Content-Type": "application/json"}
    async with session.post(url, data=body, headers=headers) as resp:
        answer = await resp.json()
        if resp.status != 201:
            raise RuntimeError(f"append failed: {resp.status} {answer}")
        return answer


def _body(first: int, n: int) -> bytes:
    return json.dumps({"events": [event(first + j) for j in range(n)]}).encode()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def trustspace_throughput(h: Harness, total: int, watch: HubWatch) -> tuple[float, float]:
    """(events/s, wall seconds)."""
    url = f"{h.agent_url(NODE)}/v1/audit/events"
    base = watch.last()
    # Encoded before the clock starts, as rsyslog's input is.
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for start in range(0, total, CHUNK):
        queue.put_nowait(_body(base + start, min(CHUNK, total - start)))

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            await _post(session, url, queue.get_nowait())

    t0 = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))
    appended = time.perf_counter() - t0
    progress(f"trustspace: {total} appended in {appended:.1f}s; waiting for the hub")
    deadline = time.monotonic() + 600
    while watch.last() < base + total and time.monotonic() < deadline:  # noqa: ASYNC110 - polls another process
        await asyncio.sleep(0.01)
    done = watch.time_of(base + total)
    if done is None:
        raise RuntimeError(f"hub has {watch.last() - base}/{total} after 600s")
    return total / (done - t0), done - t0


async def trustspace_latency(h: Harness, seconds: float, watch: HubWatch) -> list[float]:
    """10 events every 10 ms; latency per event from its request to the hub's commit (ms)."""
    url = f"{h.agent_url(NODE)}/v1/audit/events"
    sent: list[tuple[float, int, int]] = []
    ticks = int(seconds * 100)
    tasks = []
    bodies = [_body(10_000_000 + k * 10, 10) for k in range(ticks)]

    async def one(session: aiohttp.ClientSession, k: int) -> None:
        t = time.perf_counter()
        answer = await _post(session, url, bodies[k])
        seqs = [e["seq"] for e in answer["events"]]
        sent.append((t, seqs[0], seqs[-1]))

    async with aiohttp.ClientSession() as session:
        t0 = time.perf_counter()
        for k in range(ticks):
            delay = t0 + k * 0.01 - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(session, k)))
        await asyncio.gather(*tasks)
    last = max(s[2] for s in sent)
    deadline = time.monotonic() + 120
    while watch.last() < last and time.monotonic() < deadline:  # noqa: ASYNC110 - polls another process
        await asyncio.sleep(0.01)
    latencies = []
    for t, first, end in sent:
        for seq in range(first, end + 1):
            at = watch.time_of(seq)
            if at is None:
                raise RuntimeError(f"event {seq} never reached the hub")
            latencies.append((at - t) * 1000)
    return latencies


# -- rsyslog ----------------------------------------------------------------------------------


SENDER_CONF = """
global(workDirectory="{work}" maxMessageSize="8k")
module(load="imtcp")
module(load="omrelp")
input(type="imtcp" port="{in_port}" address="127.0.0.1" ruleset="fwd")
ruleset(name="fwd") {{
  action(type="omrelp" target="127.0.0.1" port="{relp_port}"
         queue.type="LinkedList" queue.filename="fwdq" queue.saveOnShutdown="on"
         windowSize="1024"
         queue.size="200000" queue.maxDiskSpace="1g" queue.dequeueBatchSize="1024"
         action.resumeRetryCount="-1" action.resumeInterval="1")
}}
"""

RECEIVER_CONF = """
global(workDirectory="{work}" maxMessageSize="8k")
module(load="imrelp")
input(type="imrelp" port="{relp_port}" address="127.0.0.1" ruleset="store")
template(name="msgonly" type="string" string="%msg%\\n")
ruleset(name="store") {{
  action(type="omfile" file="{out}" template="msgonly" ioBufferSize="256k")
}}
"""


class Rsyslog:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.in_port, self.relp_port = free_port(), free_port()
        self.out = root / "received.log"
        self.procs: list[subprocess.Popen[bytes]] = []

    def _start(self, name: str, conf: str) -> None:
        work = self.root / f"{name}-work"
        work.mkdir()
        path = self.root / f"{name}.conf"
        path.write_text(
            conf.format(work=work, in_port=self.in_port, relp_port=self.relp_port, out=self.out)
        )
        check = subprocess.run(
            ["rsyslogd", "-N1", "-f", str(path)], capture_output=True, text=True, check=False
        )
        if check.returncode != 0:
            raise RuntimeError(f"rsyslog config {path}: {check.stderr}")
        log = (self.root / f"{name}.log").open("ab")
        self.procs.append(
            subprocess.Popen(
                ["rsyslogd", "-n", "-f", str(path), "-i", str(self.root / f"{name}.pid")],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def start(self) -> Rsyslog:
        self._start("receiver", RECEIVER_CONF)
        self._start("sender", SENDER_CONF)
        wait_for(self._listening, 30, "rsyslog imtcp port")
        return self

    def _listening(self) -> bool:
        for p in self.procs:
            if p.poll() is not None:
                raise RuntimeError(f"rsyslogd exited with {p.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", self.in_port), timeout=1):
                return True
        except OSError:
            return False

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(timeout=20)

    def lines(self) -> int:
        try:
            with self.out.open("rb") as f:
                return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
        except FileNotFoundError:
            return 0

    def run(self, total: int) -> tuple[float, int, int]:
        """(events/s, delivered lines, distinct events delivered)."""
        payload = b"".join(
            b"<14>bench: " + json.dumps({"seq": i, **event(i)}).encode() + b"\n"
            for i in range(total)
        )
        t0 = time.perf_counter()
        with socket.create_connection(("127.0.0.1", self.in_port), timeout=30) as s:
            s.sendall(payload)
        progress(f"rsyslog: {total} sent in {time.perf_counter() - t0:.1f}s; waiting")
        deadline = time.monotonic() + 600
        count = 0
        while time.monotonic() < deadline:
            count = self.lines()
            if count >= total:
                break
            time.sleep(0.01)
        elapsed = time.perf_counter() - t0
        seqs = set()
        with self.out.open() as f:
            for line in f:
                seqs.add(json.loads(line[line.index("{") :])["seq"])
        return total / elapsed, count, len(seqs & set(range(total)))


# -- main -------------------------------------------------------------------------------------


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) / {five:.2f} (5 min) on {os.cpu_count()} cores"


async def measure_trustspace(root: Path, events: int, seconds: float) -> dict[str, Any]:
    (root / "trustspace").mkdir()
    h = Harness(root / "trustspace")
    watch: HubWatch | None = None
    try:
        h.start_collector(statusSink="none")
        # Production batching and shipping: the AgentConfig defaults.
        h.start_agent(
            NODE,
            batchMaxEvents=DEFAULTS.batch_max_events,
            batchMaxDelayMs=DEFAULTS.batch_max_delay_ms,
            shipWindow=DEFAULTS.ship_window,
        )
        watch = HubWatch(h.db, NODE).start()
        progress("trustspace: warm-up (1,000 events)")
        await trustspace_throughput(h, 1000, watch)
        progress(f"trustspace: throughput, {events} events")
        pids = {name: h.procs[name].pid for name in ("collector", NODE)}
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        rate, wall = await trustspace_throughput(h, events, watch)
        # CPU per event is steadier than events/s on a shared machine: it says where time goes.
        cpu = {name: (cpu_seconds(pid) - cpu0[name]) / events * 1e6 for name, pid in pids.items()}
        progress(
            f"trustspace: CPU per event: agent {cpu[NODE]:.1f} us, collector "
            f"{cpu['collector']:.1f} us ({wall:.2f} s wall)"
        )
        progress(f"trustspace: {rate:,.0f} events/s; latency at 1,000/s for {seconds:g}s")
        latencies = await trustspace_latency(h, seconds, watch)
        verify = h.audit_verify()
        if verify.returncode != 0:
            raise RuntimeError(f"audit verify failed: {verify.stdout} {verify.stderr}")
        report = json.loads(verify.stdout)
        stored = h.hub_last_seq(NODE)
        return {
            "rate": rate,
            "agent_cpu_us": cpu[NODE],
            "collector_cpu_us": cpu["collector"],
            "p50": statistics.median(latencies),
            "p99": statistics.quantiles(latencies, n=100)[98],
            "latency_events": len(latencies),
            "stored": stored,
            "appended": h.agent_last_seq(NODE),
            "verified": report.get("events"),
        }
    finally:
        if watch is not None:
            watch.stop()
        h.close()


def measure_rsyslog(root: Path, events: int) -> dict[str, Any]:
    if shutil.which("rsyslogd") is None:
        raise SystemExit("rsyslogd not found: apt-get install -y rsyslog rsyslog-relp")
    r = Rsyslog(root / "rsyslog")
    r.root.mkdir()
    try:
        r.start()
        progress(f"rsyslog: {events} events over imtcp -> omrelp (disk-assisted) -> imrelp")
        rate, delivered, distinct = r.run(events)
        return {"rate": rate, "delivered": delivered, "distinct": distinct}
    finally:
        r.close()


def table(ts: dict[str, Any], rs: dict[str, Any], events: int) -> tuple[str, bool]:
    ratio = ts["rate"] / rs["rate"]
    ts_loss = ts["appended"] - ts["stored"]
    rs_loss = events - rs["distinct"]
    checks = [
        ("trustspace events/s (append -> hub verified + stored)", f"{ts['rate']:,.0f}", ""),
        ("rsyslog events/s (imtcp -> omrelp DA queue -> imrelp -> file)", f"{rs['rate']:,.0f}", ""),
        (
            "ratio trustspace / rsyslog",
            f"{ratio:.2f}x",
            "PASS" if ratio >= TARGET_RATIO else "MISS",
        ),
        ("trustspace lost / duplicated", f"{ts_loss} / 0", "PASS" if ts_loss == 0 else "MISS"),
        (
            "rsyslog lost / duplicated",
            f"{rs_loss} / {rs['delivered'] - rs['distinct']}",
            "PASS" if rs_loss == 0 and rs["delivered"] == events else "MISS",
        ),
        ("trustspace agent CPU per event (throughput run)", f"{ts['agent_cpu_us']:.1f} µs", ""),
        (
            "trustspace collector CPU per event (throughput run)",
            f"{ts['collector_cpu_us']:.1f} µs",
            "",
        ),
        ("trustspace p50 at 1,000 events/s", f"{ts['p50']:.0f} ms", ""),
        (
            "trustspace p99 at 1,000 events/s",
            f"{ts['p99']:.0f} ms",
            "PASS" if ts["p99"] <= TARGET_P99_MS else "MISS",
        ),
    ]
    rows = ["| measure | value | target |", "|---|---:|---|"]
    rows += [f"| {a} | {b} | {c} |" for a, b, c in checks]
    ok = all(c != "MISS" for _, _, c in checks)
    return "\n".join(rows), ok


def update_docs(path: Path, text: str) -> None:
    doc = path.read_text()
    if SECTION in doc:
        start = doc.index(SECTION)
        nxt = doc.find("\n## ", start + len(SECTION))
        doc = doc[:start] + text + ("" if nxt < 0 else doc[nxt:])
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    path.write_text(doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--update-docs", type=Path, default=None)
    args = parser.parse_args()
    progress(f"start: {load_note()}")
    root = Path(tempfile.mkdtemp(prefix="trustspace-bench-audit-"))
    try:
        ts = asyncio.run(measure_trustspace(root, args.events, args.latency_seconds))
        rs = measure_rsyslog(root, args.events)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    load = load_note()
    rows, ok = table(ts, rs, args.events)
    print(rows)
    print(f"hub audit verify: {ts['verified']} events verified; {load}")
    print("PASS" if ok else "MISS")
    if args.update_docs:
        command = (
            f"python benchmarks/audit.py --events {args.events} "
            f"--latency-seconds {args.latency_seconds:g} --update-docs {args.update_docs}"
        )
        text = (
            f"{SECTION}\n\nCommand (repository root, venv active): `{command}`\n\n"
            f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on "
            f"{platform.machine()} {platform.python_implementation()} "
            f"{platform.python_version()}, {load} at the end of the run (the machine is "
            "shared with other test runs). Everything on loopback, SQLite on the same disk.\n\n"
            f"{rows}\n\n"
            f"Overall: **{'PASS' if ok else 'MISS'}**. trustspace: {args.events} events "
            f"appended in requests of {CHUNK} ({CONCURRENCY} concurrent; bodies encoded "
            "before the clock starts, like rsyslog's input) through the agent's local API; "
            f"agent batches of up to {DEFAULTS.batch_max_events} events / "
            f"{DEFAULTS.batch_max_delay_ms} ms, SM2-signed, up to {DEFAULTS.ship_window} in "
            "flight (`shipWindow`); the hub verifies request and batch signatures, SM3 chain and "
            "Merkle root, and commits (SQLite WAL, synchronous=FULL on both sides) before it "
            "acknowledges; `audit verify` re-checks "
            f"all {ts['verified']} stored events after the run. Latency: "
            f"{ts['latency_events']} events, 10 every 10 ms, from the append request to the "
            "hub's commit (hub database polled every 2 ms). rsyslog: the same event JSON as "
            "syslog lines over one `imtcp` connection (its cheapest input: no file polling), "
            "`omrelp` with an action queue `LinkedList` + `queue.filename` (disk-assisted) + "
            "`queue.saveOnShutdown`, `imrelp` -> `omfile` on a second rsyslogd; no fsync, "
            "no signatures, no verification: rsyslog's best case. Lines delivered are counted "
            "and every sequence number checked once.\n"
        )
        update_docs(args.update_docs, text)
        progress(f"wrote {SECTION} to {args.update_docs}")


if __name__ == "__main__":
    main()
