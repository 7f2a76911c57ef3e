"""Policy decisions per second, in process, next to Open Policy Agent in the same run.

    python benchmarks/policy.py [--seconds 2] [--update-docs docs/benchmarks.md]

Builds a realistic bundle (config/samples plus ~200 generated policies over every ordered
pair of states, two generated edge nodes per ASEAN state), measures `PolicyEngine.decide`
on a mixed stream of requests (decisions/s and p99 latency), then builds OPA from its Go
module at a pinned version into ~/.cache/trustspace/bin/opa-<ver>/ (once), checks that
OPA's answers equal ours on a sample of requests, and runs `opa bench` on the equivalent
Rego + data generated from the same bundle. Target (issue 7): our rate >= 1x OPA's.
Then, unless ``--gateway-seconds 0``, gateway transfers/s for 4 KiB and 1 MiB payloads with
protections and audit, through two real agents (:mod:`gateway`, its own section).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trustspace.api.constants import Classification, DataCategory, Jurisdiction
from trustspace.policy.compiler import compile_bundle
from trustspace.policy.decision import TransferRequest
from trustspace.policy.engine import PolicyEngine
from trustspace.policy.rego import QUERY, REGO_MODULE, expected, rego_data, rego_input

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway import parser as gateway_parser
from gateway import run as gateway_run

OPA_VERSION = "v1.22.2"
OPA_MODULE = "github.com/open-policy-agent/opa"
SECTION = "## Policy decisions (issue 7)"
ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "config" / "samples"
SEED = 7
CERTS = ["apec-cbpr", "sg-dptm", "iso-27701"]


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


# --- the workload ---------------------------------------------------------------------------


def sample_objects() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    policies, nodes = [], []
    for path in sorted(SAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc["kind"] == "TransferPolicy":
                policies.append(doc)
            elif doc["kind"] == "DataSpaceNode":
                nodes.append(doc)
    return policies, nodes


def generated_nodes() -> list[dict[str, Any]]:
    nodes = []
    for state in Jurisdiction:
        if state == Jurisdiction.CN:
            continue  # the one hub is cn-nanning (B1)
        for i in (1, 2):
            name = f"gen-{state.value.lower()}-{i}"
            nodes.append(
                {
                    "apiVersion": "trustspace.io/v1alpha1",
                    "kind": "DataSpaceNode",
                    "metadata": {"name": name, "labels": {"bench/tier": str(i)}},
                    "spec": {
                        "role": "edge",
                        "jurisdiction": state.value,
                        "endpoint": f"https://gw.{name}.example:8443",
                    },
                }
            )
    return nodes


def generated_policies(rng: random.Random, per_pair: int = 2) -> list[dict[str, Any]]:
    states = [j.value for j in Jurisdiction]
    cats = [c.value for c in DataCategory]
    policies = []
    for src in states:
        for dst in states:
            if src == dst:
                continue
            for n in range(per_pair):
                if rng.random() < 0.1:
                    continue  # not every pair has every policy: ~200 in all
                rules = []
                for r in range(rng.randint(1, 3)):
                    action = rng.choices(["allow", "review", "deny"], [5, 3, 2])[0]
                    levels = ["public", "internal", "important"]
                    if action != "allow":
                        levels.append("core")
                    rule: dict[str, Any] = {
                        "name": f"r{r}",
                        "classifications": rng.sample(levels, rng.randint(1, len(levels))),
                        "action": action,
                    }
                    if rng.random() < 0.7:
                        rule["categories"] = rng.sample(cats, rng.randint(1, 4))
                    if action == "review":
                        rule["approval"] = {
                            "approvers": [
                                {"name": f"{src.lower()}-regulator", "kind": "Regulator"},
                                {"name": f"{dst.lower()}-recipient", "kind": "DataRecipient"},
                            ],
                            "minApprovals": rng.randint(1, 2),
                        }
                    if action == "allow" and rng.random() < 0.3:
                        rule["requiredCertifications"] = [rng.choice(CERTS)]
                    if action == "allow" and rng.random() < 0.3:
                        rule["limits"] = {"maxPayloadSize": "16Mi"}
                    rules.append(rule)
                policies.append(
                    {
                        "apiVersion": "trustspace.io/v1alpha1",
                        "kind": "TransferPolicy",
                        "metadata": {"name": f"gen-{src.lower()}-{dst.lower()}-{n}"},
                        "spec": {
                            "priority": rng.randrange(100, 1000, 100),
                            "sources": {"jurisdictions": [src]},
                            "destinations": {"jurisdictions": [dst]},
                            "rules": rules,
                        },
                    }
                )
    return policies


def requests(rng: random.Random, nodes: list[str], count: int) -> list[TransferRequest]:
    cats = [c.value for c in DataCategory]
    out = []
    for _ in range(count):
        src, dst = rng.sample(nodes, 2)
        out.append(
            TransferRequest.of(
                src,
                dst,
                rng.choice([c.value for c in Classification]),
                rng.sample(cats, rng.choice([0, 1, 1, 1, 2])),
                payload_size=rng.choice([None, 1024, 64 * 2**20]),
                recipient_certifications=rng.sample(CERTS, rng.randint(0, 2)),
            )
        )
    return out


# --- our engine -----------------------------------------------------------------------------


@dataclass
class Measured:
    rate: float
    p50_ns: float
    p99_ns: float


def measure_engine(engine: PolicyEngine, reqs: list[TransferRequest], seconds: float) -> Measured:
    decide = engine.decide
    for r in reqs:  # warm the merged-decision cache, as a running gateway would be
        decide(r)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for r in reqs:
            decide(r)
        done += len(reqs)
    rate = done / (time.perf_counter() - start)
    clock = time.perf_counter_ns
    samples = []
    for r in reqs:
        t0 = clock()
        decide(r)
        samples.append(clock() - t0)
    samples.sort()
    return Measured(rate, samples[len(samples) // 2], samples[int(len(samples) * 0.99)])


# --- OPA ------------------------------------------------------------------------------------


def opa_binary() -> Path:
    target = Path.home() / ".cache" / "trustspace" / "bin" / f"opa-{OPA_VERSION}"
    binary = target / "opa"
    if binary.exists():
        return binary
    progress(f"building OPA {OPA_VERSION} from {OPA_MODULE} (takes minutes, once)...")
    target.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(target), "CGO_ENABLED": "0"}
    subprocess.run(
        ["go", "install", f"{OPA_MODULE}@{OPA_VERSION}"],
        env=env,
        check=True,
        cwd=tempfile.gettempdir(),
    )
    return binary


def opa_check(opa: Path, work: Path, engine: PolicyEngine, sample: list[TransferRequest]) -> int:
    """Evaluate every sampled request in one `opa eval`; return how many agree with us."""
    cases = work / "cases.json"
    cases.write_text(json.dumps({"cases": [rego_input(r) for r in sample]}))
    query = f"[d | some c in data.cases; d := {QUERY} with input as c]"
    out = subprocess.run(
        [
            str(opa),
            "eval",
            "-f",
            "json",
            "-d",
            str(work / "policy.rego"),
            "-d",
            str(work / "data.json"),
            "-d",
            str(cases),
            "--import",
            "rego.v1",
            query,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(out.stdout)["result"][0]["expressions"][0]["value"]
    agree = 0
    for request, theirs in zip(sample, got, strict=True):
        ours = expected(engine, request)
        theirs = {"action": theirs["action"], "approvers": sorted(theirs["approvers"])}
        if ours == theirs:
            agree += 1
        else:
            progress(f"DISAGREE {rego_input(request)}: ours {ours} opa {theirs}")
    return agree


def opa_bench(opa: Path, work: Path, request: TransferRequest) -> tuple[float, float]:
    """(ns/op, p99 eval ns) of OPA evaluating the decision for one input."""
    path = work / "input.json"
    path.write_text(json.dumps(rego_input(request)))
    out = subprocess.run(
        [
            str(opa),
            "bench",
            "-f",
            "json",
            "--optimize-store-for-read-speed",
            "-d",
            str(work / "policy.rego"),
            "-d",
            str(work / "data.json"),
            "-i",
            str(path),
            QUERY,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout)
    p99 = float(result.get("Extra", {}).get("histogram_timer_rego_query_eval_ns_99%", 0.0))
    return result["T"] / result["N"], p99


# --- report ---------------------------------------------------------------------------------


def table(rows: list[tuple[str, float, float, str]]) -> str:
    lines = [
        "| measure | trustspace (decisions/s) | OPA (decisions/s) | ratio | target 1x |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name, ours, theirs, extra in rows:
        ratio = ours / theirs
        verdict = "PASS" if ratio >= 1.0 else "MISS"
        lines.append(f"| {name} | {ours:,.0f} | {theirs:,.0f} | {ratio:.1f}x | {verdict}{extra} |")
    return "\n".join(lines)


def update_docs(path: Path, command: str, report: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    block = f"{SECTION}\n\n```\n{command}\n```\n\n{report}\n"
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + block
    else:
        following = text.find("\n## ", start + len(SECTION))
        end = len(text) if following < 0 else following + 1
        text = text[:start] + block + ("\n" + text[end:] if following >= 0 else "")
    path.write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per in-process run")
    parser.add_argument("--requests", type=int, default=5000, help="distinct requests")
    parser.add_argument("--check", type=int, default=2000, help="requests cross-checked with OPA")
    parser.add_argument("--update-docs", type=Path, help="rewrite this file's policy section")
    parser.add_argument(
        "--gateway-seconds",
        type=float,
        default=10.0,
        help="then gateway transfers/s for 4 KiB and 1 MiB (benchmarks/gateway.py) this long "
        "each; 0 skips them",
    )
    args = parser.parse_args()
    rng = random.Random(SEED)

    progress("compiling the bundle (samples + generated policies)...")
    sample_policies, sample_nodes = sample_objects()
    policies = sample_policies + generated_policies(rng)
    nodes = sample_nodes + generated_nodes()
    t0 = time.perf_counter()
    result = compile_bundle(policies, nodes, version=1)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine = PolicyEngine(result.bundle)
    load_s = time.perf_counter() - t0
    names = sorted(engine.nodes)
    reqs = requests(rng, names, args.requests)
    progress(
        f"{len(policies)} policies, {len(names)} nodes, {len(engine)} flow keys; "
        f"compile {compile_s:.2f}s, engine load {load_s:.2f}s"
    )

    progress(f"in-process decisions for {args.seconds:.0f}s...")
    mixed = measure_engine(engine, reqs, args.seconds)
    verdicts = {
        v: sum(engine.decide(r).verdict == v for r in reqs) for v in ("allow", "review", "deny")
    }

    # One request of each kind for `opa bench`, which measures one input at a time.
    picks: dict[str, TransferRequest] = {}
    for r in reqs:
        d = engine.decide(r)
        kind = d.verdict.value + ("-multi" if len(r.categories) > 1 else "")
        picks.setdefault(kind, r)
    progress(f"building/locating OPA {OPA_VERSION}...")
    opa = opa_binary()
    with tempfile.TemporaryDirectory(prefix="ts-policy-bench-") as tmp:
        work = Path(tmp)
        (work / "policy.rego").write_text(REGO_MODULE)
        (work / "data.json").write_text(json.dumps(rego_data(engine)))
        progress(f"checking OPA agrees on {min(args.check, len(reqs))} requests...")
        sample = reqs[: args.check]
        agree = opa_check(opa, work, engine, sample)
        rows = []
        opa_ns, opa_p99 = [], []
        for kind in sorted(picks):
            progress(f"opa bench ({kind})...")
            ns, p99 = opa_bench(opa, work, picks[kind])
            opa_ns.append(ns)
            opa_p99.append(p99)
            ours = measure_engine(engine, [picks[kind]] * 1000, args.seconds / 2)
            rows.append((f"single input: {kind}", ours.rate, 1e9 / ns, ""))
        opa_mean = statistics.mean(opa_ns)
        rows.insert(0, (f"mixed stream ({len(reqs)} requests)", mixed.rate, 1e9 / opa_mean, "¹"))

    report = "\n".join(
        [
            table(rows),
            "",
            f"- bundle: {len(policies)} policies ({len(sample_policies)} samples), {len(names)} "
            f"nodes, {len(engine)} resolved flow keys, {len(result.bundle.canonical):,} bytes "
            f"canonical; compile {compile_s:.2f}s, engine load {load_s:.2f}s",
            f"- in-process latency per decision: p50 {mixed.p50_ns / 1000:.2f} µs, "
            f"p99 {mixed.p99_ns / 1000:.2f} µs (includes the timer call); OPA query eval p99 "
            f"{min(opa_p99) / 1000:.1f}-{max(opa_p99) / 1000:.1f} µs across the single inputs",
            f"- mixed-stream verdicts: {verdicts}; measured after one warm-up pass (the engine "
            "caches each merged category combination, as a running gateway would)",
            f"- OPA {OPA_VERSION} agreed on {agree}/{len(sample)} sampled decisions "
            "(action and approvers)",
            "- ¹ OPA column: mean of the `opa bench` ns/op over the single-input rows "
            "(`opa bench` evaluates one input per run)",
            f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}",
        ]
    )
    print(report)
    if args.update_docs:
        command = f"python benchmarks/policy.py --seconds {args.seconds:g}"
        update_docs(args.update_docs, command + f" --update-docs {args.update_docs}", report)
        progress(f"wrote {args.update_docs}")
    if args.gateway_seconds > 0:
        progress("gateway transfers/s with protections and audit (benchmarks/gateway.py)...")
        gateway_run(
            gateway_parser().parse_args(
                ["--seconds", f"{args.gateway_seconds:g}"]
                + (["--update-docs", str(args.update_docs)] if args.update_docs else [])
            )
        )
    return 0 if agree == len(sample) else 1


if __name__ == "__main__":
    sys.exit(main())
