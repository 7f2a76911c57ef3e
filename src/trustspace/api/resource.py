"""The envelope every trustspace.io object shares, and how it maps to its CRD."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

from pydantic import ConfigDict, Field

from trustspace.api.constants import API_VERSION, CATEGORY, GROUP, VERSION
from trustspace.api.rules import ApiModel, SpecModel, StatusModel


@dataclass(frozen=True)
class PrinterColumn:
    """A column of `kubectl get` (additionalPrinterColumns)."""

    name: str
    json_path: str
    type: Literal["string", "integer", "number", "boolean", "date"]
    description: str
    priority: int = 0  # 1 = only with `-o wide`

    def to_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "jsonPath": self.json_path,
            "description": self.description,
        }
        if self.priority:
            out["priority"] = self.priority
        return out


AGE_COLUMN = PrinterColumn(
    "Age", ".metadata.creationTimestamp", "date", "Time since the object was created."
)


@dataclass(frozen=True)
class CrdInfo:
    """What the CRD says about a kind beyond its schema."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    printer_columns: tuple[PrinterColumn, ...]
    categories: tuple[str, ...] = (CATEGORY,)
    group: str = GROUP
    version: str = VERSION

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"


def plain(value: Any) -> Any:
    """Nested mappings (kopf's body views, MappingProxy) as the dicts pydantic expects."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


class Resource(ApiModel):
    """Base of the three kinds: `apiVersion`, `kind`, `metadata`, `spec`, `status`.

    Read an object from the API server (or a kopf `body`) with `from_body`, write one back
    with `to_body`, and patch status with `status_patch`. Wire names are camelCase; Python
    attributes are snake_case (`spec.key_rotation.grace_period`).
    """

    model_config = ConfigDict(extra="ignore")

    crd: ClassVar[CrdInfo]
    spec_model: ClassVar[type[SpecModel]]
    status_model: ClassVar[type[StatusModel]]

    api_version: str = API_VERSION
    metadata: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Self:
        """Validate an object as the API server or kopf hands it over."""
        return cls.model_validate(plain(body))

    def to_body(self) -> dict[str, Any]:
        """The object as JSON-ready camelCase dicts; absent optional fields stay absent."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def status_patch(self) -> dict[str, Any]:
        """A merge patch for the status subresource carrying this object's status."""
        status = getattr(self, "status", None)
        if status is None:
            return {"status": {}}
        return {"status": status.model_dump(mode="json", by_alias=True, exclude_none=True)}

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace", ""))

    @property
    def generation(self) -> int | None:
        value = self.metadata.get("generation")
        return int(value) if value is not None else None
