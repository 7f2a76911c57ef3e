"""An in-memory stand-in for `trustspace.kube.Kube`, enough for the space controller's jobs
(get, list by labels, create, apply, status patches) without a control plane."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from trustspace.kube import ApiError, Conflict, Obj
from trustspace.kube import kinds as k


class FakeKube:
    def __init__(self, server: str = "https://hub.example:6443") -> None:
        self.server = server
        self.objects: dict[tuple[str, str | None, str], Obj] = {}
        self.writes: list[tuple[str, str, str | None, str]] = []
        #: Kinds whose writes fail with a 500 (an API server in trouble).
        self.failing: set[str] = set()
        self._version = 0

    def put(self, obj: Obj) -> Obj:
        """Store an object as if someone else had created it."""
        self._version += 1
        stored = copy.deepcopy(obj)
        stored.setdefault("metadata", {})["resourceVersion"] = str(self._version)
        meta = stored["metadata"]
        self.objects[(stored["kind"], meta.get("namespace"), meta["name"])] = stored
        return copy.deepcopy(stored)

    def get(self, kind: k.Kind, name: str, namespace: str | None = None) -> Obj | None:
        found = self.objects.get((kind.kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def list(
        self,
        kind: k.Kind,
        namespace: str | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        limit: int = 500,
    ) -> Iterator[Obj]:
        for (kind_name, ns, _), obj in sorted(self.objects.items(), key=lambda i: str(i[0])):
            if kind_name != kind.kind or (namespace is not None and ns != namespace):
                continue
            have = obj["metadata"].get("labels") or {}
            if all(have.get(key) == value for key, value in (labels or {}).items()):
                yield copy.deepcopy(obj)

    def create(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        if (obj["kind"], meta.get("namespace"), meta["name"]) in self.objects:
            raise Conflict(409, "AlreadyExists", f"{obj['kind']} {meta['name']} exists")
        return self._write("create", obj)

    def apply(self, obj: Obj, **_: Any) -> Obj:
        return self._write("apply", obj)

    def apply_status(self, kind: k.Kind, name: str, namespace: str, status: Obj, **_: Any) -> Obj:
        """The status subresource's server-side apply, as Kube.apply_status sends it."""
        body = {"kind": kind.kind, "metadata": {"name": name, "namespace": namespace}}
        return self.request(
            "PATCH", kind.path(namespace, name) + "/status", body={**body, "status": status}
        )

    def request(self, method: str, path: str, **kw: Any) -> Obj:
        body: Obj = kw["body"]
        kind = k.BY_KIND[body["kind"]]
        meta = body["metadata"]
        current = self.objects.get((kind.kind, meta.get("namespace"), meta["name"]))
        if current is None:
            raise ApiError(404, "NotFound", path)
        self.writes.append((f"{method} status", kind.kind, meta.get("namespace"), meta["name"]))
        current["status"] = copy.deepcopy(body.get("status"))
        return copy.deepcopy(current)

    def _write(self, verb: str, obj: Obj) -> Obj:
        if obj["kind"] in self.failing:
            raise ApiError(500, "InternalError", "the API server is in trouble")
        meta = obj["metadata"]
        self.writes.append((verb, obj["kind"], meta.get("namespace"), meta["name"]))
        return self.put(obj)
