"""Real processes for the audit e2e tests: a TLS CA, keys, a trust bundle, a collector, agents.

Every process is started with its output in a log file under the test's tmp dir and is
SIGKILLed by :meth:`Harness.close`, which the fixture calls even when the test fails.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trustspace.audit.auth import sign_request
from trustspace.crypto import SM2PrivateKey
from trustspace.trust import NodeKey, TrustedNode, build_bundle, sign_bundle

TRUSTSPACE = str(Path(sys.executable).parent / "trustspace")


T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def join_netns(netns: str) -> None:
    """Move the calling thread (only) into network namespace `netns`."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
            raise OSError(ctypes.get_errno(), f"setns {netns}")
    finally:
        os.close(fd)


def in_netns(netns: str | None, fn: Callable[[], T]) -> T:
    """Run `fn` in a thread that has joined network namespace `netns` (``ip netns``); the
    namespace is per thread, so the caller's own sockets stay where they are."""
    if netns is None:
        return fn()
    import threading

    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            join_netns(netns)
            result.append(fn())
        except BaseException as exc:  # handed to the caller
            error.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=120)
    if error:
        raise error[0]
    if not result:
        raise TimeoutError(f"no answer from a thread in netns {netns}")
    return result[0]


def make_tls(root: Path, ips: tuple[str, ...] = ("127.0.0.1",)) -> tuple[Path, Path, Path]:
    """A self-signed ECDSA CA and a server certificate for `ips` (SM2 TLS is not in ssl)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trustspace test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "collector")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = root / "ca.pem", root / "server.pem", root / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path


class Harness:
    def __init__(
        self,
        root: Path,
        nodes: tuple[str, ...] = ("edge-my",),
        database_url: str | None = None,
        hub_host: str = "127.0.0.1",
        netns: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.hub_host = hub_host
        self.netns = netns or {}
        """Process name (``collector`` or a node) -> the ``ip netns`` it runs in."""
        self.database_url = database_url
        """PostgreSQL for the collector instead of its SQLite file."""
        self.ca, self.cert, self.tls_key = make_tls(
            root, tuple(dict.fromkeys(("127.0.0.1", hub_host)))
        )
        self.hub_key = SM2PrivateKey.generate()
        self.hub_key_file = root / "hub.key"
        self.hub_key_file.write_bytes(self.hub_key.to_pem())
        self.hub_pub_file = root / "hub.pub"
        self.hub_pub_file.write_bytes(self.hub_key.public_key().to_pem())
        self.node_keys = {n: SM2PrivateKey.generate() for n in nodes}
        self.extra_keys: dict[str, list[NodeKey]] = {n: [] for n in nodes}
        self.bundle_file = root / "trust-bundle.json"
        self.serial = 0
        self.write_bundle()
        self.port = free_port()
        self.url = f"https://{hub_host}:{self.port}"
        self.db = root / "hub" / "collector.db"
        self.status_file = root / "status.jsonl"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.agent_ports: dict[str, int] = {}
        self._ssl = ssl.create_default_context(cafile=str(self.ca))

    # -- trust -----------------------------------------------------------------------------

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
                role="edge",
                jurisdiction="MY",
                keys=[NodeKey.of(k.public_key(), start), *self.extra_keys[n]],
            )
            for n, k in self.node_keys.items()
        ]
        bundle = build_bundle(nodes, serial=self.serial, hub_key_id=self.hub_key.key_id)
        tmp = self.bundle_file.with_suffix(".tmp")
        tmp.write_text(sign_bundle(bundle, self.hub_key).to_json())
        tmp.replace(self.bundle_file)

    # -- processes -------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> None:
        log = (self.root / f"{name}.log").open("ab")
        env = {**os.environ, "TRUSTSPACE_LOG_FORMAT": "human"}
        wrap = ["ip", "netns", "exec", self.netns[name]] if name in self.netns else []
        self.procs[name] = subprocess.Popen(
            [*wrap, TRUSTSPACE, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        log.close()

    def start_collector(self, **overrides: Any) -> None:
        config = {
            "listenHost": self.hub_host,
            "listenPort": self.port,
            "tlsCertFile": str(self.cert),
            "tlsKeyFile": str(self.tls_key),
            **(
                {"databaseUrl": self.database_url}
                if self.database_url
                else {"database": str(self.db)}
            ),
            "trustBundleFile": str(self.bundle_file),
            "hubKeyFile": str(self.hub_key_file),
            "checkpointIntervalSeconds": 1.0,
            "statusIntervalSeconds": 0.5,
            "statusSink": "file",
            "statusFile": str(self.status_file),
            **overrides,
        }
        path = self.root / "collector.yaml"
        path.write_text(yaml.safe_dump(config))
        self._spawn("collector", ["collector", "run", "--config", str(path)])
        wait_for(self._collector_up, 30, "collector /healthz")

    def _collector_up(self) -> bool:
        self.check_alive("collector")

        def probe() -> bool:
            try:
                with urllib.request.urlopen(self.url + "/healthz", context=self._ssl, timeout=2):  # noqa: S310
                    return True
            except (OSError, urllib.error.URLError):
                return False

        return in_netns(self.netns.get("collector"), probe)

    def agent_config(self, node: str, **overrides: Any) -> Path:
        key_file = self.root / f"{node}.key"
        key_file.write_bytes(self.node_keys[node].to_pem())
        port = self.agent_ports.setdefault(node, free_port())
        config = {
            "node": node,
            "storePath": str(self.root / node / "audit.db"),
            "keyFile": str(key_file),
            "collectorUrl": self.url,
            "caFile": str(self.ca),
            "listenPort": port,
            "batchMaxEvents": 500,
            "batchMaxDelayMs": 100,
            "heartbeatSeconds": 1.0,
            "backoffInitialSeconds": 0.1,
            "backoffMaxSeconds": 1.0,
            "requestTimeoutSeconds": 10.0,
            **overrides,
        }
        path = self.root / f"{node}.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def start_agent(self, node: str = "edge-my", **overrides: Any) -> None:
        path = self.agent_config(node, **overrides)
        self._spawn(node, ["agent", "run", "--config", str(path)])
        wait_for(lambda: self._agent_up(node), 30, f"agent {node} /healthz")

    def _agent_up(self, node: str) -> bool:
        self.check_alive(node)

        def probe() -> bool:
            try:
                with urllib.request.urlopen(f"{self.agent_url(node)}/healthz", timeout=2):  # noqa: S310
                    return True
            except (OSError, urllib.error.URLError):
                return False

        return in_netns(self.netns.get(node), probe)

    def agent_url(self, node: str) -> str:
        return f"http://127.0.0.1:{self.agent_ports[node]}"

    def check_alive(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is not None:
            tail = (self.root / f"{name}.log").read_text(errors="replace")[-3000:]
            raise AssertionError(f"{name} exited with {proc.returncode}:\n{tail}")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def close(self) -> None:
        for name in list(self.procs):
            self.kill(name)

    # -- state -----------------------------------------------------------------------------

    def _pg_rows(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        import psycopg

        assert self.database_url is not None
        with psycopg.connect(self.database_url, autocommit=True) as db:
            try:
                return db.execute(sql, params).fetchall()
            except psycopg.errors.UndefinedTable:
                return []

    def hub_last_seq(self, node: str) -> int:
        if self.database_url:
            rows = self._pg_rows("SELECT last_seq FROM nodes WHERE node=%s", (node,))
            return int(rows[0][0]) if rows else 0
        if not self.db.exists():
            return 0
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10) as db:
            try:
                row = db.execute("SELECT last_seq FROM nodes WHERE node=?", (node,)).fetchone()
            except sqlite3.OperationalError:
                return 0
        return int(row[0]) if row else 0

    def agent_last_seq(self, node: str) -> int:
        with sqlite3.connect(
            f"file:{self.root / node / 'audit.db'}?mode=ro", uri=True, timeout=10
        ) as db:
            return int(db.execute("SELECT v FROM meta WHERE k='last_seq'").fetchone()[0])

    def hub_subjects(self, node: str) -> list[str]:
        if self.database_url:
            rows = self._pg_rows("SELECT body FROM events WHERE node=%s ORDER BY seq", (node,))
            return [json.loads(b)["subject"] for (b,) in rows]
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10) as db:
            rows = db.execute("SELECT body FROM events WHERE node=? ORDER BY seq", (node,))
            return [json.loads(b)["subject"] for (b,) in rows]

    def audit_verify(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                TRUSTSPACE,
                "audit",
                "verify",
                "--db",
                self.database_url or str(self.db),
                "--trust-bundle",
                str(self.bundle_file),
                "--hub-key",
                str(self.hub_pub_file),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    # -- HTTP ------------------------------------------------------------------------------

    def post_events(self, node: str, subjects: list[str], timeout: float = 10) -> tuple[int, Any]:
        """Append events through the agent's local API; (status, JSON) or (0, error)."""
        body = json.dumps(
            {
                "events": [
                    {
                        "actor": "loadgen",
                        "action": "transfer.requested",
                        "subject": s,
                        "classification": "internal",
                        "policyVersion": 3,
                    }
                    for s in subjects
                ]
            }
        ).encode()
        req = urllib.request.Request(  # noqa: S310 - loopback test URLs
            f"{self.agent_url(node)}/v1/audit/events",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")
        except (OSError, urllib.error.URLError) as exc:
            return 0, str(exc)

    def hub_request(
        self,
        method: str,
        path: str,
        body: bytes,
        node: str,
        key: SM2PrivateKey | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        """A signed request to the collector, as an agent (or an attacker) would send it."""
        sent = headers or sign_request(method, path, body, node, key or self.node_keys[node])
        req = urllib.request.Request(  # noqa: S310 - loopback test URLs
            self.url + path,
            data=body or None,
            headers={**sent, "Content-Type": "application/json"},
            method=method,
        )
        try:
            with urllib.request.urlopen(req, context=self._ssl, timeout=30) as resp:  # noqa: S310
                return resp.status, json.loads(resp.read()), sent
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}"), sent


class Loader:
    """Posts chunks of events from a thread until ``total`` were acknowledged (or stopped).

    A chunk whose request fails (e.g. the agent was just killed) may or may not be stored; it
    is never resent with the same subjects, so "acknowledged" subjects must appear exactly once
    at the hub and every other subject at most once.
    """

    def __init__(
        self,
        harness: Harness,
        node: str,
        total: int,
        chunk: int = 100,
        pause: float = 0.0,
        deadline: float = 600.0,
    ) -> None:
        import threading

        self.harness, self.node, self.total, self.chunk = harness, node, total, chunk
        self.pause = pause
        self.acked: list[str] = []
        self.failed_requests = 0
        self.statuses: dict[int, int] = {}
        self._stop = threading.Event()
        self._deadline = time.monotonic() + deadline
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Loader:
        self._thread.start()
        return self

    def _run(self) -> None:
        netns = self.harness.netns.get(self.node)
        if netns is not None:
            join_netns(netns)  # the agent's local API is inside its namespace
        self._load()

    def _load(self) -> None:
        n = 0
        while (
            len(self.acked) < self.total
            and not self._stop.is_set()
            and time.monotonic() < self._deadline
        ):
            size = min(self.chunk, self.total - len(self.acked))
            subjects = [f"c{n}-{j}" for j in range(size)]
            n += 1
            status, _ = self.harness.post_events(self.node, subjects)
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 201:
                self.acked.extend(subjects)
            else:
                self.failed_requests += 1
                time.sleep(0.05)  # the agent is restarting; do not spin
            if self.pause:
                time.sleep(self.pause)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout=timeout)
        assert not self._thread.is_alive(), "loader did not finish in time"

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()


def assert_exactly_once(harness: Harness, node: str, loader: Loader) -> int:
    """Everything acknowledged is at the hub once; nothing twice; the chain verifies."""
    subjects = harness.hub_subjects(node)
    assert len(subjects) == len(set(subjects)), "an event is stored twice"
    missing = set(loader.acked) - set(subjects)
    assert not missing, f"{len(missing)} acknowledged events missing, e.g. {sorted(missing)[:5]}"
    assert len(subjects) == harness.agent_last_seq(node) == harness.hub_last_seq(node)
    result = harness.audit_verify()
    assert result.returncode == 0, result.stdout + result.stderr
    return len(subjects)
