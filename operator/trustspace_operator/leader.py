"""Leader election on a coordination.k8s.io Lease: of several replicas, one acts.

kopf's peering pauses peers of equal priority rather than electing one, so the operator
takes a Lease before it starts kopf, renews it from a thread, and exits at once if it ever
loses it (as controller-runtime does): the restarted process waits as a standby. A standby
takes over once the holder stops renewing for `lease_duration` seconds.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from trustspace import clock
from trustspace.kube import ApiError, Conflict, Kube, Obj, Unreachable
from trustspace.kube import kinds as k

log = logging.getLogger(__name__)


def _micro(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(s: str) -> dt.datetime:
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return dt.datetime.strptime(s, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    raise ValueError(f"unreadable lease time {s!r}")


class LeaderElector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str = "trustspace-operator",
        identity: str | None = None,
        lease_duration: float = 15.0,
        renew_every: float = 5.0,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}"
        self.lease_duration = lease_duration
        self.renew_every = renew_every
        self.on_lost = on_lost or _exit_now
        self._stop = threading.Event()

    def _lease(
        self, holder: str, acquired: dt.datetime, renewed: dt.datetime, transitions: int
    ) -> Obj:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": holder,
                "leaseDurationSeconds": int(self.lease_duration),
                "acquireTime": _micro(acquired),
                "renewTime": _micro(renewed),
                "leaseTransitions": transitions,
            },
        }

    def try_acquire(self) -> bool:
        """One attempt to take or renew the Lease; True when we hold it afterwards."""
        now = clock.now()
        live = self.kube.get(k.LEASE, self.name, self.namespace)
        try:
            if live is None:
                self.kube.create(self._lease(self.identity, now, now, 0))
                return True
            spec = live.get("spec", {})
            holder = spec.get("holderIdentity")
            renewed = spec.get("renewTime")
            duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
            expired = renewed is None or now > _parse(renewed) + dt.timedelta(seconds=duration)
            if holder != self.identity and not expired:
                return False
            transitions = int(spec.get("leaseTransitions") or 0) + (holder != self.identity)
            acquired = _parse(spec["acquireTime"]) if holder == self.identity else now
            lease = self._lease(self.identity, acquired, now, transitions)
            lease["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            self.kube.replace(lease)
            return True
        except Conflict:
            return False

    def acquire(self, log_every: float = 30.0) -> None:
        """Block until this process leads."""
        last_log = 0.0
        while not self._stop.is_set():
            try:
                if self.try_acquire():
                    log.info(
                        "leading as %s (lease %s/%s)", self.identity, self.namespace, self.name
                    )
                    return
            except (ApiError, Unreachable) as exc:
                log.warning("leader election: %s", exc)
            if time.monotonic() - last_log > log_every:
                log.info(
                    "standing by: another replica holds lease %s/%s", self.namespace, self.name
                )
                last_log = time.monotonic()
            self._stop.wait(min(2.0, self.renew_every))

    def keep_renewing(self) -> threading.Thread:
        def run() -> None:
            last_ok = time.monotonic()
            while not self._stop.wait(self.renew_every):
                try:
                    if self.try_acquire():
                        last_ok = time.monotonic()
                        continue
                    log.error("lost the lease to another replica; exiting to stand by")
                    self.on_lost()
                    return
                except (ApiError, Unreachable) as exc:
                    log.warning("could not renew the lease: %s", exc)
                # Stop acting before a standby may take over.
                if time.monotonic() - last_ok > self.lease_duration * 0.8:
                    log.error("could not renew the lease in time; exiting to stand by")
                    self.on_lost()
                    return

        thread = threading.Thread(target=run, name="leader-renew", daemon=True)
        thread.start()
        return thread

    def release(self) -> None:
        """Give the lease up at a clean shutdown so a standby need not wait for expiry."""
        self._stop.set()
        try:
            live = self.kube.get(k.LEASE, self.name, self.namespace)
            if live and live.get("spec", {}).get("holderIdentity") == self.identity:
                live["spec"]["renewTime"] = _micro(clock.now() - dt.timedelta(days=1))
                self.kube.replace(live)
        except (ApiError, Unreachable) as exc:
            log.warning("could not release the lease: %s", exc)


def _exit_now() -> None:
    os._exit(3)


class _StandbyHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.path.split("?")[0] == "/healthz"
        body = b'{"status": "standby"}' if ok else b"{}"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # a probe every few seconds is not news


class StandbyHealth:
    """Answers the liveness probe's ``/healthz`` while this replica waits for the Lease.

    kopf serves ``/healthz`` only once it runs, that is once this replica leads; without this
    the kubelet killed every standby after three failed probes, so the second replica
    restarted once a minute. The port is freed on exit, before kopf binds it.
    """

    def __init__(self, port: int, host: str = "0.0.0.0") -> None:  # noqa: S104 - the probe comes from the node
        self._server = ThreadingHTTPServer((host, port), _StandbyHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="standby-health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def __enter__(self) -> StandbyHealth:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
