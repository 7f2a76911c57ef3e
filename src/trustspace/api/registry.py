"""The three kinds, and reading any of them from a dict by its `kind`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from trustspace.api.dataspacenode import DataSpaceNode
from trustspace.api.mirrorlink import MirrorLink
from trustspace.api.resource import Resource
from trustspace.api.transferpolicy import TransferPolicy

RESOURCES: Final[tuple[type[Resource], ...]] = (DataSpaceNode, TransferPolicy, MirrorLink)
_BY_KIND: Final = {r.crd.kind: r for r in RESOURCES}


def resource_class(kind: str) -> type[Resource]:
    try:
        return _BY_KIND[kind]
    except KeyError:
        raise ValueError(f"not a trustspace.io kind: {kind!r}") from None


def parse_resource(body: Mapping[str, Any]) -> DataSpaceNode | TransferPolicy | MirrorLink:
    """Validate a trustspace.io object of any kind (e.g. one document of a manifest)."""
    cls = resource_class(str(body.get("kind", "")))
    parsed = cls.from_body(body)
    assert isinstance(parsed, DataSpaceNode | TransferPolicy | MirrorLink)
    return parsed
