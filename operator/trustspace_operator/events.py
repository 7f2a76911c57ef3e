"""Kubernetes Events on trustspace objects: what `kubectl describe` shows a user.

Events are posted from any thread (handlers, timers, the collector), so this does not go
through kopf's per-handler event queue. Repeats of the same reason and message within the
aggregation window bump a count instead of adding rows, as kubectl's own recorder does.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
from typing import Literal

from trustspace import clock
from trustspace.kube import ApiError, Kube, Obj, Unreachable
from trustspace.kube import kinds as k
from trustspace.logs import redact

log = logging.getLogger(__name__)
EventType = Literal["Normal", "Warning"]
_WINDOW = dt.timedelta(minutes=10)
_MAX_MESSAGE = 1024


class EventRecorder:
    def __init__(self, kube: Kube, component: str = "trustspace-operator") -> None:
        self.kube = kube
        self.component = component
        self._recent: dict[tuple[str, str, str, str], tuple[str, int, dt.datetime]] = {}
        self._lock = threading.Lock()

    def post(self, obj: Obj, type_: EventType, reason: str, message: str) -> None:
        meta = obj.get("metadata", {})
        ns, name, uid = meta.get("namespace"), meta.get("name"), meta.get("uid")
        if not ns or not name:
            return
        message = redact(message)[:_MAX_MESSAGE]
        now = clock.now()
        stamp = clock.rfc3339(now)
        key = (ns, str(uid or name), reason, message)
        with self._lock:
            seen = self._recent.get(key)
            if seen and now - seen[2] < _WINDOW:
                event_name, count = seen[0], seen[1] + 1
            else:
                event_name, count = f"{name}.{secrets.token_hex(8)}", 1
            self._recent[key] = (event_name, count, now)
            if len(self._recent) > 4096:  # bounded: forget the oldest half
                for old in sorted(self._recent, key=lambda x: self._recent[x][2])[:2048]:
                    del self._recent[old]
        try:
            if count > 1:
                self.kube.patch(k.EVENT, event_name, {"count": count, "lastTimestamp": stamp}, ns)
                return
            self.kube.create(
                {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {"name": event_name, "namespace": ns},
                    "involvedObject": {
                        "apiVersion": obj.get("apiVersion"),
                        "kind": obj.get("kind"),
                        "name": name,
                        "namespace": ns,
                        "uid": uid,
                        "resourceVersion": meta.get("resourceVersion"),
                    },
                    "type": type_,
                    "reason": reason,
                    "message": message,
                    "source": {"component": self.component},
                    "reportingComponent": self.component,
                    "firstTimestamp": stamp,
                    "lastTimestamp": stamp,
                    "count": 1,
                }
            )
        except (ApiError, Unreachable) as exc:
            # An event is information, never a reason to fail a reconcile.
            log.warning("could not post event %s on %s/%s: %s", reason, ns, name, exc)
