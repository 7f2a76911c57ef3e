"""A small JSON client for the Kubernetes API, shared by the operator, collector and CLI."""

from trustspace.kube.client import (
    FIELD_MANAGER,
    ApiError,
    Conflict,
    Kube,
    NotFound,
    Obj,
    Unreachable,
)
from trustspace.kube.kinds import Kind

__all__ = [
    "FIELD_MANAGER",
    "ApiError",
    "Conflict",
    "Kind",
    "Kube",
    "NotFound",
    "Obj",
    "Unreachable",
]
