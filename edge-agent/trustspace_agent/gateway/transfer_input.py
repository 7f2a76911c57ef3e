"""Reading ``POST /v1/transfers``: every way a request can be wrong gets a precise 4xx.

Two shapes:

* ``application/json``: ``{"metadata": {...}, "records": [{...}, ...]}`` or
  ``{"metadata": {...}, "payloadBase64": "..."}``;
* ``application/octet-stream``: the payload as the body, the metadata as JSON in the
  ``X-Trustspace-Metadata`` header.

Metadata: ``source`` (this node), ``destination``, ``classification``, ``categories``,
optional ``purpose``, ``recipientCertifications``, ``link`` (default
``<source>-to-<destination>``, the MirrorLink naming of the samples), ``dataset``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from trustspace.api.constants import Classification, DataCategory
from trustspace.refusal import HttpRefusal

METADATA_HEADER = "X-Trustspace-Metadata"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_CLASSES = {c.value for c in Classification}
_CATEGORIES = {c.value for c in DataCategory}


class InputError(HttpRefusal):
    """A transfer request that cannot be read (malformed, too large, unknown names)."""


@dataclass(frozen=True)
class TransferInput:
    source: str
    destination: str
    classification: str
    categories: tuple[str, ...]
    purpose: str | None
    certifications: tuple[str, ...]
    link: str
    dataset: str | None
    records: list[dict[str, Any]] | None
    data: bytes | None

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else 0


async def read_body(request: web.Request, limit: int) -> bytes:
    """The body, or 413 as soon as it is known to exceed ``limit``."""
    if request.content_length is not None and request.content_length > limit:
        raise InputError(
            413,
            "payload_too_large",
            f"body of {request.content_length} bytes exceeds {limit}",
            "body",
        )
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = await request.content.read(256 * 1024)
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise InputError(413, "payload_too_large", f"body exceeds {limit} bytes", "body")
        chunks.append(chunk)
    return b"".join(chunks)


def _string(meta: dict[str, Any], name: str, required: bool = True) -> str | None:
    value = meta.get(name)
    if value is None:
        if required:
            raise InputError(
                400, "missing_field", f"metadata.{name} is required", f"metadata.{name}"
            )
        return None
    if not isinstance(value, str) or not value:
        raise InputError(
            400, "invalid_field", f"metadata.{name} must be a non-empty string", f"metadata.{name}"
        )
    return value


def _names(meta: dict[str, Any], name: str, allowed: set[str] | None) -> tuple[str, ...]:
    value = meta.get(name, [])
    field = f"metadata.{name}"
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(400, "invalid_field", f"{field} must be a list of strings", field)
    if len(value) > 16:
        raise InputError(400, "invalid_field", f"{field} has more than 16 entries", field)
    if allowed is not None:
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise InputError(422, "unknown_value", f"{field}: unknown {', '.join(unknown)}", field)
    return tuple(value)


def parse_metadata(meta: Any, local_node: str, nodes: set[str]) -> dict[str, Any]:
    if not isinstance(meta, dict):
        raise InputError(400, "missing_field", "metadata (a JSON object) is required", "metadata")
    known = {
        "source",
        "destination",
        "classification",
        "categories",
        "purpose",
        "recipientCertifications",
        "link",
        "dataset",
    }
    extra = sorted(set(meta) - known)
    if extra:
        raise InputError(
            400, "unknown_field", f"unknown metadata field {extra[0]}", f"metadata.{extra[0]}"
        )
    source = _string(meta, "source")
    destination = _string(meta, "destination")
    classification = _string(meta, "classification")
    assert source and destination and classification
    if source != local_node:
        raise InputError(
            403,
            "not_local_source",
            f"this gateway sends for {local_node} only, not {source}",
            "metadata.source",
        )
    if destination not in nodes:
        raise InputError(
            422,
            "unknown_node",
            f"destination {destination!r} is not a node of the data space",
            "metadata.destination",
        )
    if destination == source:
        raise InputError(422, "invalid_field", "destination is this node", "metadata.destination")
    if classification not in _CLASSES:
        raise InputError(
            422,
            "unknown_value",
            f"classification must be one of {', '.join(sorted(_CLASSES))}",
            "metadata.classification",
        )
    categories = _names(meta, "categories", _CATEGORIES)
    certs = _names(meta, "recipientCertifications", None)
    purpose = _string(meta, "purpose", required=False)
    if purpose is not None and len(purpose) > 256:
        raise InputError(
            400, "invalid_field", "metadata.purpose is over 256 characters", "metadata.purpose"
        )
    link = _string(meta, "link", required=False) or f"{source}-to-{destination}"
    dataset = _string(meta, "dataset", required=False)
    for field, value in (("link", link), ("dataset", dataset)):
        if value is not None and not _NAME.match(value):
            raise InputError(
                400, "invalid_field", f"metadata.{field} is not a DNS name", f"metadata.{field}"
            )
    return {
        "source": source,
        "destination": destination,
        "classification": classification,
        "categories": categories,
        "purpose": purpose,
        "certifications": certs,
        "link": link,
        "dataset": dataset,
    }


def parse_transfer(
    content_type: str, headers: dict[str, str], body: bytes, local_node: str, nodes: set[str]
) -> TransferInput:
    if content_type == "application/json":
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise InputError(400, "malformed_json", "body is not JSON", "body") from None
        if not isinstance(doc, dict):
            raise InputError(400, "malformed_json", "body must be a JSON object", "body")
        unknown = sorted(set(doc) - {"metadata", "records", "payloadBase64"})
        if unknown:
            raise InputError(400, "unknown_field", f"unknown field {unknown[0]}", unknown[0])
        meta = parse_metadata(doc.get("metadata"), local_node, nodes)
        has_records, has_b64 = "records" in doc, "payloadBase64" in doc
        if has_records == has_b64:
            raise InputError(
                400, "missing_field", "give exactly one of records or payloadBase64", "records"
            )
        if has_records:
            records = doc["records"]
            if (
                not isinstance(records, list)
                or not records
                or not all(isinstance(r, dict) for r in records)
            ):
                raise InputError(
                    400, "invalid_field", "records must be a non-empty list of objects", "records"
                )
            return TransferInput(**meta, records=records, data=None)
        raw = doc["payloadBase64"]
        try:
            data = base64.b64decode(raw, validate=True) if isinstance(raw, str) else None
        except (binascii.Error, ValueError):
            data = None
        if data is None:
            raise InputError(400, "invalid_field", "payloadBase64 is not base64", "payloadBase64")
        return TransferInput(**meta, records=None, data=data)
    if content_type == "application/octet-stream":
        raw_meta = headers.get(METADATA_HEADER)
        if raw_meta is None:
            raise InputError(
                400, "missing_field", f"{METADATA_HEADER} header is required", METADATA_HEADER
            )
        try:
            meta_doc = json.loads(raw_meta)
        except ValueError:
            raise InputError(
                400, "malformed_json", f"{METADATA_HEADER} is not JSON", METADATA_HEADER
            ) from None
        meta = parse_metadata(meta_doc, local_node, nodes)
        if not body:
            raise InputError(400, "missing_field", "the payload is empty", "body")
        return TransferInput(**meta, records=None, data=body)
    raise InputError(
        415,
        "unsupported_media_type",
        f"Content-Type {content_type or '(none)'} is not application/json or "
        "application/octet-stream",
        "Content-Type",
    )
