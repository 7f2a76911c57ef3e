"""Provisioning throughput of the operator against the API server's own limit (issue 5).

For N nodes (default 100 and 1,000) on a fresh local control plane:
  1. plain client: create, with 16 threads, the objects the operator would create for N nodes
     (DataSpaceNode, ServiceAccount, Role, RoleBinding, ConfigMap, StatefulSet, Service,
     key Secret, gateway TLS Secret) - what the API server can take;
  2. operator: create N DataSpaceNodes (one hub, N-1 edges) and time until every node is
     KeyReady (its objects exist by then), with the operator's peak RSS;
  3. rotation: request a key rotation on every node and time until all have a new key.

Run: .venv/bin/python benchmarks/provision.py [--nodes 100 --nodes 1000]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]

from trustspace.api.dataspacenode import DataSpaceNode  # noqa: E402
from trustspace.crypto import SM2PrivateKey  # noqa: E402
from trustspace.kube import Kube  # noqa: E402
from trustspace.kube import kinds as k  # noqa: E402
from trustspace.localk8s import LocalCluster, find_bin_dir  # noqa: E402
from trustspace.localk8s.processes import Process  # noqa: E402
from trustspace_operator import render  # noqa: E402
from trustspace_operator.tls.ca import GatewayCA  # noqa: E402

THREADS = 16
#: The operator's metrics port during a run; its reconcile counts by cause are printed.
METRICS_PORT = 0
TARGETS = {"ratio": 0.5, "converge_1000": 120.0, "rss_mb": 250.0, "rotate_1000": 60.0}


def say(msg: str) -> None:
    print(f"[provision] {msg}", file=sys.stderr, flush=True)


def node_body(name: str, ns: str, hub: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "trustspace.io/v1alpha1",
        "kind": "DataSpaceNode",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "role": "hub" if hub else "edge",
            "jurisdiction": "CN" if hub else "VN",
            "endpoint": f"https://{name}.example:8443",
        },
    }


def wait(
    what: str, done: Callable[[], tuple[int, int]], timeout: float, proc: Process | None = None
) -> float:
    t0 = time.monotonic()
    last = 0.0
    while True:
        if proc is not None and not proc.running():
            raise SystemExit(f"the operator exited; its log ends with:\n{proc.log_tail(20)}")
        have, total = done()
        now = time.monotonic()
        if have >= total:
            return now - t0
        if now - t0 > timeout:
            raise SystemExit(f"{what}: only {have}/{total} after {timeout:.0f}s")
        if now - last > 2:
            say(f"  {what}: {have}/{total} ({now - t0:.0f}s)")
            last = now
        time.sleep(0.05)


def plain_client(kube: Kube, n: int, ns: str) -> float:
    pem = base64.b64encode(SM2PrivateKey.generate().to_pem()).decode()
    # One TLS pair for all: the plain client measures the API server, not key generation.
    cert, key = GatewayCA.generate(ns).issue(["gw.example"], dt.datetime.now(dt.UTC))
    tls = {"tls.crt": base64.b64encode(cert).decode(), "tls.key": base64.b64encode(key).decode()}
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    def one(i: int) -> None:
        created = kube.create(node_body(f"n{i:05d}", ns, hub=i == 0))
        node = DataSpaceNode.from_body(created)
        for obj in render.desired_objects(node, image="img", collector_url="https://c"):
            kube.create(obj)
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": render.Names(node.name).key_secret, "namespace": ns},
            "data": {"key.pem": pem},
        }
        kube.create(secret)
        names = render.Names(node.name)
        tls_secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": names.gateway_tls, "namespace": ns},
            "data": tls,
        }
        kube.create(tls_secret)

    t0 = time.monotonic()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(one, range(n)))
    return time.monotonic() - t0


def node_facts(body: dict[str, Any]) -> tuple[bool, str | None]:
    """What the waits look at: whether the node is KeyReady, and its active key."""
    status = body.get("status") or {}
    ready = any(
        cond["type"] == "KeyReady" and cond["status"] == "True"
        for cond in status.get("conditions", [])
    )
    return ready, (status.get("activeKey") or {}).get("keyId")


class NodeWatch:
    """The DataSpaceNodes of a namespace as a watch shows them. Waiting on a watch costs the
    API server one stream; listing every node four times a second, as this benchmark did,
    cost it about a fifth of its CPU at 1,000 nodes, taken from the operator it measures
    (and a list of 1,000 nodes took long enough to blur the end time)."""

    def __init__(self, kube: Kube, ns: str) -> None:
        self.kube = kube
        self.ns = ns
        self.facts: dict[str, tuple[bool, str | None]] = {}
        self._stop = threading.Event()
        self._version = self._list()
        self._thread = threading.Thread(target=self._run, name="node-watch", daemon=True)
        self._thread.start()

    def _list(self) -> str:
        page = self.kube.request("GET", k.DATASPACENODE.path(self.ns))
        self.facts = {body["metadata"]["name"]: node_facts(body) for body in page["items"]}
        return str(page["metadata"]["resourceVersion"])

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._watch()
            except Exception as exc:  # a broken watch: list afresh and watch on
                if self._stop.is_set():
                    return
                say(f"  watch of DataSpaceNodes ended ({exc}); listing again")
                time.sleep(1)
                self._version = self._list()

    def _watch(self) -> None:
        for line in self.kube.watch_lines(
            k.DATASPACENODE, self.ns, resource_version=self._version, timeout_seconds=60
        ):
            event = orjson.loads(line)
            body = event["object"]
            if event["type"] == "ERROR":
                raise RuntimeError(body.get("message"))
            self._version = body["metadata"]["resourceVersion"]
            if event["type"] == "DELETED":
                self.facts.pop(body["metadata"]["name"], None)
            elif event["type"] != "BOOKMARK":
                self.facts[body["metadata"]["name"]] = node_facts(body)

    def key_ready(self) -> int:
        return sum(1 for ready, _ in list(self.facts.values()) if ready)

    def key_ids(self) -> dict[str, str]:
        return {name: key for name, (_, key) in list(self.facts.items()) if key}

    def stop(self) -> None:
        self._stop.set()


def reconcile_counts() -> str:
    """The operator's reconciles so far, by cause (from its Prometheus endpoint)."""
    if not METRICS_PORT:
        return "reconcile counts: pass --metrics-port"
    import urllib.request

    url = f"http://127.0.0.1:{METRICS_PORT}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    counts = [
        line.split("{")[1].replace('cause="', "").replace('"}', "=").replace(" ", "").split(".")[0]
        for line in text.splitlines()
        if line.startswith("trustspace_reconciles_total{")
    ]
    return "reconciles " + ", ".join(sorted(counts))


WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE", "APPLY")


def api_requests(kube: Kube) -> dict[str, int]:
    """Requests the API server has served so far, by verb (its own counters; watches
    counted once when they end)."""
    resp = kube.api.call_api("GET", kube.server + "/metrics", header_params=kube_auth(kube))
    counts: dict[str, int] = {}
    for line in resp.read().decode().splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels, value = line.rsplit(" ", 1)
        verb = labels.split('verb="', 1)[1].split('"', 1)[0]
        counts[verb] = counts.get(verb, 0) + int(float(value))
    return counts


def kube_auth(kube: Kube) -> dict[str, str]:
    headers: dict[str, str] = {}
    kube.api.update_params_for_auth(headers, [], ["BearerToken"], "/metrics", "GET", None)
    return headers


def writes_since(kube: Kube, before: dict[str, int], n: int) -> str:
    now = api_requests(kube)
    diff = {verb: now.get(verb, 0) - before.get(verb, 0) for verb in sorted(now)}
    writes = {verb: count for verb, count in diff.items() if verb in WRITE_VERBS and count}
    reads = {verb: count for verb, count in diff.items() if verb not in WRITE_VERBS and count}
    total = sum(writes.values())
    per_verb = ", ".join(f"{verb}={count}" for verb, count in writes.items())
    read_verbs = ", ".join(f"{verb}={count}" for verb, count in reads.items()) or "none"
    return f"{total} API writes ({total / n:.1f} per node: {per_verb}); reads {read_verbs}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_now(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


def cpu_since(pids: dict[str, int], before: dict[str, float], wall: float) -> str:
    """How the cores were split between the processes during a phase: where the time went
    when the API server, etcd, the operator and this client share them."""
    now = cpu_now(pids)
    used = {name: now[name] - before[name] for name in pids}
    parts = ", ".join(f"{name} {sec:.1f}" for name, sec in used.items())
    return f"CPU s over {wall:.1f}s wall: {parts}; total {sum(used.values()):.1f}"


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(n: int, bin_dir: Path, workdir: Path) -> dict[str, float]:
    say(f"N={n}: starting a fresh control plane")
    cluster = LocalCluster(f"bench{n}", root=workdir, bin_dir=bin_dir).start()
    try:
        cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        cluster.kubectl("wait", "--for=condition=established", "--timeout=60s", "crd", "--all")
        kube = Kube.from_kubeconfig(str(cluster.kubeconfig))
        say(f"N={n}: plain client creating {n * 9} objects with {THREADS} threads")
        writes = api_requests(kube)
        pids = {**cluster.pids(), "client": os.getpid()}
        cpu = cpu_now(pids)
        plain = plain_client(kube, n, "plain")
        say(f"N={n}: plain client took {plain:.1f}s; {writes_since(kube, writes, n)}")
        say(f"N={n}: plain {cpu_since(pids, cpu, plain)}")

        ns = "op"
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        env = dict(
            os.environ,
            KUBECONFIG=str(cluster.kubeconfig),
            TRUSTSPACE_TICK="5",
            TRUSTSPACE_RESYNC="3600",
            TRUSTSPACE_WORKERS=str(THREADS),
            TRUSTSPACE_LOG_LEVEL="WARNING",
        )
        argv = [
            sys.executable,
            "-m",
            "trustspace.cli",
            "operator",
            "run",
            "--namespace",
            ns,
            "--no-leader-elect",
            "--liveness-port",
            "0",
            "--metrics-port",
            str(METRICS_PORT),
        ]
        proc = Process("operator", argv, workdir / f"operator-{n}.log", detach=False)
        proc.start(env)
        watch: NodeWatch | None = None
        try:
            time.sleep(2)
            say(f"N={n}: creating {n} DataSpaceNodes for the operator")
            assert proc.pid is not None
            pids = {**cluster.pids(), "operator": proc.pid, "client": os.getpid()}
            watch = NodeWatch(kube, ns)
            writes = api_requests(kube)
            cpu = cpu_now(pids)
            t0 = time.monotonic()
            with ThreadPoolExecutor(THREADS) as pool:
                list(
                    pool.map(
                        lambda i: kube.create(node_body(f"n{i:05d}", ns, hub=i == 0)), range(n)
                    )
                )
            wait("KeyReady", lambda: (watch.key_ready(), n), timeout=900, proc=proc)
            converge = time.monotonic() - t0
            say(f"N={n}: all KeyReady in {converge:.1f}s; {reconcile_counts()}")
            say(f"N={n}: {writes_since(kube, writes, n)} (the DataSpaceNodes' creation included)")
            say(f"N={n}: operator {cpu_since(pids, cpu, converge)}")
            objects = sum(1 for _ in kube.list(k.STATEFUL_SET, ns))
            assert objects == n, f"{objects} StatefulSets for {n} nodes"

            before = watch.key_ids()
            say(f"N={n}: requesting rotation of {n} keys")
            writes = api_requests(kube)
            cpu = cpu_now(pids)
            t1 = time.monotonic()
            patch = {"metadata": {"annotations": {"trustspace.io/rotate-key": "bench"}}}
            with ThreadPoolExecutor(THREADS) as pool:
                list(pool.map(lambda name: kube.patch(k.DATASPACENODE, name, patch, ns), before))

            def rotated() -> tuple[int, int]:
                now = watch.key_ids()
                return sum(1 for name, key in before.items() if now.get(name) not in (None, key)), n

            wait("rotated", rotated, timeout=900, proc=proc)
            rotate = time.monotonic() - t1
            say(f"N={n}: all rotated in {rotate:.1f}s; {reconcile_counts()}")
            say(f"N={n}: {writes_since(kube, writes, n)} (the rotation requests included)")
            say(f"N={n}: rotate {cpu_since(pids, cpu, rotate)}")
            rss = peak_rss_mb(proc.pid)
        finally:
            if watch is not None:
                watch.stop()
            proc.stop()
        return {"n": n, "plain": plain, "operator": converge, "rotate": rotate, "rss": rss}
    finally:
        cluster.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--nodes", type=int, action="append", help="N (repeatable); default 100 and 1000"
    )
    parser.add_argument("--metrics-port", type=int, default=0, help="expose operator metrics")
    args = parser.parse_args()
    sizes = args.nodes or [100, 1000]
    global METRICS_PORT
    METRICS_PORT = args.metrics_port
    bin_dir = find_bin_dir()
    results = []
    with tempfile.TemporaryDirectory(prefix="ts-bench-") as tmp:
        for n in sizes:
            results.append(run(n, bin_dir, Path(tmp)))
    report(results)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(results: list[dict[str, float]]) -> None:
    head = ("N", "plain s", "operator s", "ratio", "rotate s", "peak RSS MB")
    print("\n" + " ".join(f"{h:>11}" for h in head))
    for r in results:
        ratio = r["plain"] / r["operator"]
        row = (r["n"], r["plain"], r["operator"], ratio, r["rotate"], r["rss"])
        print(" ".join(f"{v:>11.2f}" if isinstance(v, float) else f"{v:>11}" for v in row))
    print("\ntargets:")
    for r in results:
        ratio = r["plain"] / r["operator"]
        n = int(r["n"])
        print(
            f"  N={n}: throughput {ratio:.2f}x plain (>= {TARGETS['ratio']}x) "
            f"{verdict(ratio >= TARGETS['ratio'])}"
        )
        print(
            f"  N={n}: peak RSS {r['rss']:.0f} MB (<= {TARGETS['rss_mb']:.0f}) "
            f"{verdict(r['rss'] <= TARGETS['rss_mb'])}"
        )
        if n >= 1000:
            print(
                f"  N={n}: all KeyReady in {r['operator']:.1f}s (<= 120) "
                f"{verdict(r['operator'] <= TARGETS['converge_1000'])}"
            )
            print(
                f"  N={n}: all keys rotated in {r['rotate']:.1f}s (<= 60) "
                f"{verdict(r['rotate'] <= TARGETS['rotate_1000'])}"
            )


if __name__ == "__main__":
    main()
