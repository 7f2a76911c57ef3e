"""Validation declared once, enforced twice: as CEL in the API server and in Python.

The API server is the gate (a `kubectl apply` of a bad manifest must fail), but the operator
validates specs too, and a rule written twice by hand drifts. So every cross-field rule is a
`Rule` holding both its CEL expression (emitted into the CRD as `x-kubernetes-validations`)
and its Python mirror, and the two travel together. Transition rules (`self == oldSelf`) have
no Python mirror: they need the stored object, which only the API server has.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

VALIDATIONS_KEY = "x-kubernetes-validations"


class FieldReason(StrEnum):
    """How the API server classifies a failed CEL rule (shown as e.g. "Required value")."""

    INVALID = "FieldValueInvalid"
    REQUIRED = "FieldValueRequired"
    FORBIDDEN = "FieldValueForbidden"
    DUPLICATE = "FieldValueDuplicate"


@dataclass(frozen=True)
class Rule:
    """A CEL rule with its Python mirror.

    On a model (listed in `__rules__`) `check` receives the model instance; as `Annotated`
    metadata on a field it receives the field's value. `check` returns True when valid, and
    must treat absent optional fields like CEL's `has()` does. `field_path` (CRD syntax,
    e.g. ".gracePeriod") points the error at the offending field, for humans and for
    `kubectl` output alike.
    """

    cel: str
    message: str
    check: Callable[[Any], bool] | None = None
    field_path: str | None = None
    reason: FieldReason | None = None

    def to_schema(self) -> dict[str, str]:
        out = {"rule": self.cel, "message": self.message}
        if self.field_path:
            out["fieldPath"] = self.field_path
        if self.reason:
            out["reason"] = self.reason.value
        return out

    @property
    def loc(self) -> tuple[str, ...]:
        return tuple(p for p in (self.field_path or "").split(".") if p)

    # As `Annotated[...]` metadata: validate the field's value, and describe the rule.
    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        schema = handler(source)
        if self.check is None:
            return schema
        return core_schema.no_info_after_validator_function(self._validate_value, schema)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out = dict(handler(schema))
        out[VALIDATIONS_KEY] = [*out.get(VALIDATIONS_KEY, []), self.to_schema()]
        return out

    def _validate_value(self, value: Any) -> Any:
        assert self.check is not None
        if not self.check(value):
            raise PydanticCustomError("trustspace_rule", self.message)
        return value


def immutable(what: str) -> Rule:
    """A transition rule: once set, the field keeps its value (API server only)."""
    return Rule(cel="self == oldSelf", message=f"{what} is immutable")


@dataclass(frozen=True)
class ListType:
    """`x-kubernetes-list-type` for a list field, with the uniqueness it promises checked in Python.

    `keys` are Python attribute names of the item model; the CRD gets their camelCase aliases.
    """

    kind: Literal["atomic", "set", "map"]
    keys: tuple[str, ...] = ()

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        schema = handler(source)
        if self.kind == "atomic":
            return schema
        return core_schema.no_info_after_validator_function(self._validate_unique, schema)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out = dict(handler(schema))
        out["x-kubernetes-list-type"] = self.kind
        if self.kind == "map":
            out["x-kubernetes-list-map-keys"] = [to_camel(k) for k in self.keys]
        return out

    def _key(self, item: Any) -> Hashable:
        if self.kind == "set":
            return item  # type: ignore[no-any-return]
        return tuple(getattr(item, k) for k in self.keys)

    def _validate_unique(self, items: Sequence[Any]) -> Sequence[Any]:
        seen: set[Hashable] = set()
        errors: list[InitErrorDetails] = []
        for index, item in enumerate(items):
            key = self._key(item)
            if key in seen:
                errors.append(
                    InitErrorDetails(
                        type=PydanticCustomError(
                            "trustspace_duplicate", "Duplicate value: {key}", {"key": repr(key)}
                        ),
                        loc=(index,),
                        input=item,
                    )
                )
            seen.add(key)
        if errors:
            raise ValidationError.from_exception_data("list", errors)
        return items


def _rules_json_schema(schema: dict[str, Any], cls: type) -> None:
    rules: tuple[Rule, ...] = getattr(cls, "__rules__", ())
    if rules:
        existing = schema.get(VALIDATIONS_KEY, [])
        schema[VALIDATIONS_KEY] = [*existing, *(r.to_schema() for r in rules)]


class ApiModel(BaseModel):
    """Base of every trustspace.io model: camelCase on the wire, docstrings as descriptions.

    Field docstrings become the CRD descriptions that `kubectl explain` prints, so they are
    written for the platform engineer reading them, not for the Python reader.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        use_attribute_docstrings=True,
        json_schema_extra=_rules_json_schema,
    )

    __rules__: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        errors = [
            InitErrorDetails(
                type=PydanticCustomError("trustspace_rule", rule.message),
                loc=rule.loc,
                input=self._at(rule.loc),
            )
            for rule in type(self).__rules__
            if rule.check is not None and not rule.check(self)
        ]
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self

    def _at(self, loc: tuple[str, ...]) -> Any:
        """The value at a camelCase path below this model (for error reports)."""
        value: Any = self
        for alias in loc:
            if not isinstance(value, BaseModel):
                return value
            by_alias = {f.alias or n: n for n, f in type(value).model_fields.items()}
            value = getattr(value, by_alias.get(alias, alias), None)
        return value


class SpecModel(ApiModel):
    """Desired state written by users: unknown fields are errors, as with `kubectl --validate`."""

    model_config = ConfigDict(extra="forbid")


class StatusModel(ApiModel):
    """Observed state written by the operator: tolerate fields a newer operator added."""

    model_config = ConfigDict(extra="ignore")


def field_path(loc: Sequence[int | str]) -> str:
    """A pydantic error location as Kubernetes writes field paths: `spec.rules[1].action`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def format_errors(error: ValidationError) -> list[str]:
    """One `path: message` line per error, in the style of the API server's rejections."""
    return [f"{field_path(e['loc'])}: {e['msg']}" for e in error.errors()]
