"""Crypto throughput next to the OpenSSL CLI, measured in the same run.

    python benchmarks/crypto.py [--seconds 3] [--update-docs docs/benchmarks.md]

Prints ops/s for SM2 sign/verify on every available backend and MB/s (10^6 bytes/s) for
SM3, SM4-CTR and SM4-GCM on 16 KiB buffers, beside ``openssl speed`` on the same machine,
with the ratio and PASS/MISS against the issue-4 targets. Rates are per second of user
CPU time on both sides, which is what ``openssl speed`` divides by unless given
``-elapsed``. Debian's OpenSSL 3.0 CLI has no
SM4-GCM, so GCM is compared with the CLI's SM4-CTR.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from trustspace.crypto import (
    BackendUnavailable,
    SM2PrivateKey,
    ctr_encrypt,
    default_backend,
    get_backend,
    seal,
    sm3,
)
from trustspace.crypto.sm2 import PREFERENCE

BUFFER = 16 * 1024
SM2_MESSAGE = bytes(20)  # `openssl speed sm2` signs a 20-byte buffer
SECTION = "## Crypto (issue 4)"


@dataclass
class Row:
    operation: str
    ours: float
    unit: str
    cli: float | None
    cli_label: str
    target: float | None  # minimum ratio ours / cli, None = informational

    @property
    def ratio(self) -> float | None:
        return self.ours / self.cli if self.cli else None

    @property
    def verdict(self) -> str:
        if self.target is None or self.ratio is None:
            return ""
        return "PASS" if self.ratio >= self.target else "MISS"


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per CPU-second of ``fn``, run for ``seconds`` of wall-clock time.

    Like ``openssl speed`` (without ``-elapsed``), the divisor is the process's *user CPU
    time*, so both sides are measured the same way and a busy machine slows neither
    side's figure more than the other's.
    """
    fn()
    count = 0
    deadline = time.perf_counter() + seconds
    cpu_start = os.times().user
    while True:
        for _ in range(8):
            fn()
        count += 8
        if time.perf_counter() >= deadline:
            cpu = os.times().user - cpu_start
            if cpu > 0.2 * seconds:  # enough ticks (10 ms each) for a stable divisor
                return count / cpu
            deadline = time.perf_counter() + seconds


# -- openssl speed ----------------------------------------------------------------------


def openssl_speed(*args: str) -> str:
    binary = shutil.which("openssl")
    if binary is None:
        raise SystemExit("the openssl CLI is required for the comparison")
    proc = subprocess.run(
        [binary, "speed", *args], capture_output=True, text=True, check=True, timeout=300
    )
    return proc.stdout


def cli_sm2(seconds: int) -> tuple[float, float]:
    out = openssl_speed("-seconds", str(seconds), "sm2")
    match = re.search(r"SM2 \(CurveSM2\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", out)
    if not match:
        raise SystemExit(f"cannot parse `openssl speed sm2` output:\n{out}")
    return float(match.group(1)), float(match.group(2))


def cli_evp(seconds: int, name: str) -> float:
    """MB/s for one EVP algorithm on 16 KiB blocks (the CLI reports 1000s of bytes/s)."""
    out = openssl_speed("-seconds", str(seconds), "-bytes", str(BUFFER), "-evp", name)
    match = re.search(rf"^{re.escape(name)}\s+([\d.]+)k\s*$", out, re.MULTILINE | re.IGNORECASE)
    if not match:
        raise SystemExit(f"cannot parse `openssl speed -evp {name}` output:\n{out}")
    return float(match.group(1)) * 1000 / 1e6


# -- ours -------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


def sm2_rates(seconds: float, names: list[str]) -> dict[str, tuple[float, float]]:
    key = SM2PrivateKey.generate()
    public = key.public_key()
    results = {}
    for name in names:
        backend = get_backend(name)
        progress(f"SM2 sign/verify on {name} ({seconds:g} s each)")
        signature = key.sign(SM2_MESSAGE, backend=backend)
        signs = rate(partial(key.sign, SM2_MESSAGE, backend=backend), seconds)
        verifies = rate(partial(public.verify, SM2_MESSAGE, signature, backend=backend), seconds)
        results[name] = (signs, verifies)
    return results


def symmetric_rates(seconds: float) -> tuple[float, float, float]:
    data = os.urandom(BUFFER)
    key = os.urandom(16)
    counter = os.urandom(16)
    mb = BUFFER / 1e6
    progress(f"SM3 on 16 KiB ({seconds:g} s)")
    sm3_rate = rate(lambda: sm3(data), seconds) * mb
    progress(f"SM4-CTR on 16 KiB ({seconds:g} s)")
    ctr_rate = rate(lambda: ctr_encrypt(key, counter, data), seconds) * mb
    progress(f"SM4-GCM envelope on 16 KiB ({seconds:g} s)")
    gcm_rate = rate(lambda: seal(key, data, b"aad"), seconds) * mb
    return sm3_rate, ctr_rate, gcm_rate


def measure(seconds: int, rounds: int) -> list[Row]:
    """Alternate CLI and our runs; with several rounds, report each side's median."""
    selected = default_backend().name
    others = []
    for name in PREFERENCE:
        if name == selected:
            continue
        try:
            get_backend(name)
            others.append(name)
        except BackendUnavailable as exc:
            progress(f"SM2 backend {name}: unavailable ({exc})")

    cli: dict[str, list[float]] = {k: [] for k in ("sign", "verify", "sm3", "ctr")}
    ours: dict[str, list[float]] = {k: [] for k in ("sign", "verify", "sm3", "ctr", "gcm")}
    for n in range(rounds):
        progress(f"round {n + 1}/{rounds}: openssl speed -seconds {seconds} sm2")
        sign, verify = cli_sm2(seconds)
        cli["sign"].append(sign)
        cli["verify"].append(verify)
        ((sign, verify),) = sm2_rates(seconds, [selected]).values()
        ours["sign"].append(sign)
        ours["verify"].append(verify)
        progress(f"round {n + 1}/{rounds}: openssl speed ... -evp sm3, -evp sm4-ctr")
        cli["sm3"].append(cli_evp(seconds, "sm3"))
        cli["ctr"].append(cli_evp(seconds, "sm4-ctr"))
        sm3_rate, ctr_rate, gcm_rate = symmetric_rates(seconds)
        ours["sm3"].append(sm3_rate)
        ours["ctr"].append(ctr_rate)
        ours["gcm"].append(gcm_rate)

    c = {k: median(v) for k, v in cli.items()}
    o = {k: median(v) for k, v in ours.items()}
    rows = [
        Row(f"SM2 sign ({selected}, selected)", o["sign"], "ops/s", c["sign"], "sm2", 0.8),
        Row(f"SM2 verify ({selected}, selected)", o["verify"], "ops/s", c["verify"], "sm2", 0.8),
    ]
    for name, (sign, verify) in sm2_rates(seconds, others).items():
        rows.append(Row(f"SM2 sign ({name})", sign, "ops/s", c["sign"], "sm2", None))
        rows.append(Row(f"SM2 verify ({name})", verify, "ops/s", c["verify"], "sm2", None))
    rows += [
        Row("SM3, 16 KiB", o["sm3"], "MB/s", c["sm3"], "sm3", 0.8),
        Row("SM4-CTR, 16 KiB", o["ctr"], "MB/s", c["ctr"], "sm4-ctr", 0.8),
        Row("SM4-GCM seal, 16 KiB", o["gcm"], "MB/s", c["ctr"], "sm4-ctr", 0.6),
    ]
    return rows


# -- report -----------------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    head = "| operation | trustspace | openssl CLI | ratio | target | result |"
    lines = [head, "|---|---:|---:|---:|---:|---|"]
    for r in rows:
        unit = r.unit
        cli = f"{r.cli:,.1f} {unit} ({r.cli_label})" if r.cli is not None else "-"
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        target = f">= {r.target:.1f}x" if r.target is not None else "-"
        lines.append(
            f"| {r.operation} | {r.ours:,.1f} {unit} | {cli} | {ratio} | {target} | {r.verdict} |"
        )
    return "\n".join(lines)


def machine() -> str:
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs, load average before the run {load}; "
        f"Python {sys.version.split()[0]}; system {default_backend().version}; "
        f"SM3/SM4 through cryptography's bundled OpenSSL"
    )


def update_docs(path: Path, command: str, report: str, context: str) -> None:
    body = (
        f"{SECTION}\n\n"
        f"Command (repository root, venv active): `{command}`\n\n"
        f"Machine: {context}.\n\n"
        f"{report}\n\n"
        "Targets: SM3 and SM4-CTR at least 0.8x the CLI; SM4-GCM at least 0.6x the CLI's "
        "SM4-CTR (Debian's OpenSSL 3.0 CLI has no SM4-GCM); SM2 sign and verify on the "
        "selected (fastest overall) backend at least 0.8x `openssl speed sm2`. Rows without "
        "a target are for information. All rates are per second of user CPU time, as "
        "`openssl speed` computes them without `-elapsed`; with several rounds each side "
        "is the median of its rounds, CLI and ours alternating. Ours and the CLI drive the "
        "same OpenSSL code, so ratios near 1 are expected; on a shared 2-core machine single "
        "rounds vary by 10-20%, which is why ratios above 1 appear.\n"
    )
    text = (
        path.read_text()
        if path.exists()
        else "# Benchmarks\n\nMeasured results, one section per issue.\n"
    )
    start = text.find(SECTION)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + body
    else:
        following = text.find("\n## ", start + len(SECTION))
        tail = text[following + 1 :] if following != -1 else ""
        text = text[:start] + body + ("\n" + tail if tail else "")
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3, help="time per measurement")
    parser.add_argument("--rounds", type=int, default=1, help="repeat; report medians")
    parser.add_argument("--update-docs", type=Path, help="rewrite this file's crypto section")
    args = parser.parse_args()

    context = machine()
    rows = measure(args.seconds, args.rounds)
    report = table(rows)
    print()
    print(report)
    print()
    missed = [r.operation for r in rows if r.verdict == "MISS"]
    print("all targets met" if not missed else f"targets missed: {', '.join(missed)}")
    if args.update_docs:
        command = "python benchmarks/crypto.py"
        if args.seconds != 3:
            command += f" --seconds {args.seconds}"
        if args.rounds != 1:
            command += f" --rounds {args.rounds}"
        command += f" --update-docs {args.update_docs}"
        update_docs(args.update_docs, command, report, context)
        progress(f"wrote {args.update_docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
