"""A thin JSON client for the Kubernetes API on top of the official client's transport.

The generated models cost more CPU than the requests they describe; the operator handles
plain dicts, so this client sends and returns JSON as it is. It reuses the official client
for kubeconfig parsing, TLS, authentication and connection pooling.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson
import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from trustspace.kube.kinds import Kind, kind_of

Obj = dict[str, Any]
FIELD_MANAGER = "trustspace-operator"
# (connect, read) seconds: a dead edge cluster must fail fast, not hang a worker.
DEFAULT_TIMEOUT = (5.0, 30.0)


class ApiError(Exception):
    """The API server refused a request; `status` is the HTTP code, `reason` its reason."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class Unreachable(Exception):
    """No answer from the API server (connection refused, timeout, TLS failure)."""


class Kube:
    """JSON requests to one cluster."""

    def __init__(
        self,
        api_client: k8s.ApiClient,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        field_manager: str = FIELD_MANAGER,
    ):
        self.api = api_client
        self.timeout = timeout
        # Every write names its manager, so watchers can tell our own changes from others'.
        self.field_manager = field_manager
        self._manager = [("fieldManager", field_manager)]

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, **kw: Any) -> Kube:
        """From a kubeconfig file, or in-cluster configuration when `path` is None and none set."""
        if path is None:
            try:
                k8s_config.load_incluster_config()
                return cls(k8s.ApiClient(), **kw)
            except k8s_config.ConfigException:
                pass
        return cls(k8s_config.new_client_from_config(config_file=path), **kw)

    @classmethod
    def from_kubeconfig_dict(cls, doc: Mapping[str, Any], **kw: Any) -> Kube:
        configuration = k8s.Configuration()
        loader = k8s_config.kube_config.KubeConfigLoader(config_dict=dict(doc))
        loader.load_and_set(configuration)
        # One attempt per call: the caller decides about retries and backoff.
        configuration.retries = False
        return cls(k8s.ApiClient(configuration), **kw)

    @property
    def server(self) -> str:
        return str(self.api.configuration.host)

    def close(self) -> None:
        self.api.close()

    # ----- the request ---------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str = "application/json",
        timeout: tuple[float, float] | None = None,
    ) -> Obj:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        _, url, headers, _, _ = self.api.param_serialize(
            method,
            path,
            query_params=list(query),
            header_params=headers,
            auth_settings=["BearerToken"],
        )
        try:
            resp = self.api.call_api(
                method,
                url,
                header_params=headers,
                body=body,
                _request_timeout=timeout or self.timeout,
            )
            raw = resp.read()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Unreachable(f"{self.server}: {exc}") from exc
        except k8s.ApiException as exc:
            raise _error(exc.status or 0, exc.reason or "", exc.body) from exc
        if resp.status >= 400:
            raise _error(resp.status, resp.reason or "", raw)
        # orjson: decoding responses was a tenth of the operator's CPU with the json module.
        return orjson.loads(raw) if raw else {}

    def watch_lines(
        self,
        kind: Kind,
        namespace: str | None = None,
        *,
        labels: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: int = 300,
    ) -> Iterator[bytes]:
        """One watch request: the raw JSON lines of its events, undecoded, so a caller can
        drop the ones it does not need (most of them) without parsing them."""
        query = [("watch", "true"), ("allowWatchBookmarks", "true")]
        query.append(("timeoutSeconds", str(timeout_seconds)))
        if labels:
            query.append(("labelSelector", labels))
        if resource_version:
            query.append(("resourceVersion", resource_version))
        headers = {"Accept": "application/json"}
        _, url, headers, _, _ = self.api.param_serialize(
            "GET",
            kind.path(namespace),
            query_params=query,
            header_params=headers,
            auth_settings=["BearerToken"],
        )
        try:
            resp = self.api.call_api(
                "GET",
                url,
                header_params=headers,
                _request_timeout=(self.timeout[0], timeout_seconds + 30.0),
            )
            if resp.status >= 400:
                raise _error(resp.status, resp.reason or "", resp.read())
            try:
                for line in resp.response:
                    if line.strip():
                        yield line
            finally:
                resp.response.close()  # a half-read watch cannot go back to the pool
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Unreachable(f"{self.server}: {exc}") from exc
        except k8s.ApiException as exc:
            raise _error(exc.status or 0, exc.reason or "", exc.body) from exc

    # ----- verbs ---------------------------------------------------------------------------
    def get(self, kind: Kind, name: str, namespace: str | None = None) -> Obj | None:
        try:
            return self.request("GET", kind.path(namespace, name))
        except NotFound:
            return None

    def list(
        self,
        kind: Kind,
        namespace: str | None = None,
        *,
        labels: Mapping[str, str] | str | None = None,
        limit: int = 500,
    ) -> Iterator[Obj]:
        query: list[tuple[str, str]] = [("limit", str(limit))]
        if labels:
            selector = (
                labels
                if isinstance(labels, str)
                else ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
            )
            query.append(("labelSelector", selector))
        cont = ""
        while True:
            page = self.request(
                "GET", kind.path(namespace), query=[*query, *([("continue", cont)] if cont else [])]
            )
            yield from page.get("items", [])
            cont = page.get("metadata", {}).get("continue", "")
            if not cont:
                return

    def create(self, obj: Obj) -> Obj:
        kind = kind_of(obj)
        return self.request("POST", kind.path(_ns(obj)), query=self._manager, body=obj)

    def replace(self, obj: Obj) -> Obj:
        """PUT with the object's resourceVersion: fails with Conflict if it changed meanwhile."""
        kind = kind_of(obj)
        path = kind.path(_ns(obj), obj["metadata"]["name"])
        return self.request("PUT", path, query=self._manager, body=obj)

    def apply(self, obj: Obj, *, field_manager: str = FIELD_MANAGER, force: bool = True) -> Obj:
        """Server-side apply: the fields in `obj` become ours; others' fields stay."""
        kind = kind_of(obj)
        query = [("fieldManager", field_manager), ("force", "true" if force else "false")]
        return self.request(
            "PATCH",
            kind.path(_ns(obj), obj["metadata"]["name"]),
            query=query,
            body=obj,
            content_type="application/apply-patch+yaml",
        )

    def apply_status(
        self, kind: Kind, name: str, namespace: str, status: Obj, *, field_manager: str
    ) -> Obj:
        """Server-side apply of `status` to the status subresource: the fields in it become
        `field_manager`'s; what other managers own in the same status stays."""
        body = {
            "apiVersion": kind.api_version,
            "kind": kind.kind,
            "metadata": {"name": name, "namespace": namespace},
            "status": status,
        }
        return self.request(
            "PATCH",
            kind.path(namespace, name) + "/status",
            query=[("fieldManager", field_manager), ("force", "true")],
            body=body,
            content_type="application/apply-patch+yaml",
        )

    def claim_for_apply(self, live: Obj, *, field_manager: str = FIELD_MANAGER) -> bool:
        """Make what `field_manager` set with a create or update its applied configuration,
        before it applies to `live` for the first time.

        A create records its fields under an Update entry of the manager; an apply owns only
        what its Apply entry lists, so a field the next applied configuration leaves out
        would stay behind under the Update entry instead of being removed. This moves the
        Update entry's fields into the Apply entry, as kubectl does when it upgrades objects
        from client-side apply. Returns whether `live` needed it; a write since `live` was
        read makes it a no-op (the next apply after a fresh read claims them)."""
        entries = list(live.get("metadata", {}).get("managedFields") or [])
        mine = [
            e for e in entries if e.get("manager") == field_manager and not e.get("subresource")
        ]
        updated = [e for e in mine if e.get("operation") == "Update"]
        applied = [e for e in mine if e.get("operation") == "Apply"]
        if not updated:
            return False
        if any(e.get("apiVersion") != updated[0].get("apiVersion") for e in mine):
            return False  # not ours to merge: one field set per manager and version
        fields: Obj = {}
        for entry in applied + updated:
            _merge_fields(fields, entry.get("fieldsV1") or {})
        claimed = {**(applied or updated)[0], "operation": "Apply", "fieldsV1": fields}
        rest = [e for e in entries if e not in mine]
        meta = live["metadata"]
        kind = kind_of(live)
        try:
            self.patch(
                kind,
                meta["name"],
                [
                    {
                        "op": "test",
                        "path": "/metadata/resourceVersion",
                        "value": meta["resourceVersion"],
                    },
                    {"op": "replace", "path": "/metadata/managedFields", "value": [*rest, claimed]},
                ],
                meta.get("namespace"),
                patch_type="json",
            )
        except ApiError as exc:
            if exc.status not in (409, 422):  # 422: changed since read (the test failed)
                raise
        return True

    def patch(
        self,
        kind: Kind,
        name: str,
        patch: Obj | Sequence[Obj],
        namespace: str | None = None,
        *,
        subresource: str | None = None,
        patch_type: str = "merge",
    ) -> Obj:
        content_type = {
            "merge": "application/merge-patch+json",
            "json": "application/json-patch+json",
            "strategic": "application/strategic-merge-patch+json",
        }[patch_type]
        path = kind.path(namespace, name) + (f"/{subresource}" if subresource else "")
        return self.request(
            "PATCH", path, query=self._manager, body=patch, content_type=content_type
        )

    def patch_status(self, kind: Kind, name: str, namespace: str, status: Obj) -> Obj:
        return self.patch(kind, name, {"status": status}, namespace, subresource="status")

    def delete(
        self,
        kind: Kind,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
    ) -> bool:
        """Delete; False when it was already gone."""
        try:
            self.request(
                "DELETE",
                kind.path(namespace, name),
                body={
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "propagationPolicy": propagation,
                },
            )
        except NotFound:
            return False
        return True


def _merge_fields(into: Obj, fields: Mapping[str, Any]) -> None:
    """The union of two FieldsV1 sets (nested keys, each leaf an empty object)."""
    for key, sub in fields.items():
        _merge_fields(into.setdefault(key, {}), sub or {})


def _ns(obj: Obj) -> str | None:
    ns = obj.get("metadata", {}).get("namespace")
    return str(ns) if ns else None


def _error(status: int, reason: str, raw: bytes | str | None) -> ApiError:
    message = ""
    if raw:
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        try:
            message = json.loads(text).get("message", text)
        except ValueError:
            message = text
    cls = {404: NotFound, 409: Conflict}.get(status, ApiError)
    return cls(status, reason, message)


def quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")
