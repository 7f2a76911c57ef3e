"""The trustspace.io/v1alpha1 API: DataSpaceNode, TransferPolicy and MirrorLink.

The pydantic models here are the single source of truth: `python -m trustspace.api.crdgen`
generates `crds/*.yaml` and `docs/api.md` from them, and the operator and the agent read
and write objects through them (`DataSpaceNode.from_body(body)`, `.status_patch()`).
"""

from trustspace.api.conditions import (
    Condition,
    find_condition,
    is_condition_true,
    remove_condition,
    set_condition,
)
from trustspace.api.constants import API_VERSION, CATEGORY, GROUP, VERSION
from trustspace.api.dataspacenode import DataSpaceNode, DataSpaceNodeSpec, DataSpaceNodeStatus
from trustspace.api.mirrorlink import MirrorLink, MirrorLinkSpec, MirrorLinkStatus
from trustspace.api.registry import RESOURCES, parse_resource, resource_class
from trustspace.api.resource import Resource
from trustspace.api.rules import format_errors
from trustspace.api.transferpolicy import TransferPolicy, TransferPolicySpec, TransferPolicyStatus

__all__ = [
    "API_VERSION",
    "CATEGORY",
    "GROUP",
    "RESOURCES",
    "VERSION",
    "Condition",
    "DataSpaceNode",
    "DataSpaceNodeSpec",
    "DataSpaceNodeStatus",
    "MirrorLink",
    "MirrorLinkSpec",
    "MirrorLinkStatus",
    "Resource",
    "TransferPolicy",
    "TransferPolicySpec",
    "TransferPolicyStatus",
    "find_condition",
    "format_errors",
    "is_condition_true",
    "parse_resource",
    "remove_condition",
    "resource_class",
    "set_condition",
]
