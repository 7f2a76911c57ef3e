"""Pydantic JSON Schema -> Kubernetes structural OpenAPI v3 schema.

The API server accepts only *structural* schemas: every node has a `type`, no `$ref`, no
`anyOf` that introduces types, no `additionalProperties: false`, no `uniqueItems`. Pydantic
emits all of those, so this module rewrites them:

* `$ref` / single `allOf` are inlined; the referencing field's keys (its description, its
  CEL rules) win over, or add to, the referenced definition's;
* `Optional[X]` (`anyOf: [X, null]`) becomes plain X; optional means "not in `required`";
* `title`, `additionalProperties: false` and `propertyNames` are dropped;
* `default` is kept only where the API server applies it usefully: scalars, and whole
  nested objects (see `common.object_default`); never under status, which the operator
  owns, and never `null`, `[]` or a map's `{}`;
* integers get `format: int32` when bounded to fit, `int64` otherwise, as controller-gen
  does;
* descriptions are reflowed: docstrings wrap at source width, `kubectl explain` wraps
  at the terminal's.
"""

from __future__ import annotations

from typing import Any

from trustspace.api.rules import VALIDATIONS_KEY

_INT32_MAX = 2**31 - 1
_DROPPED = frozenset({"title", "$defs", "propertyNames"})


class SchemaError(ValueError):
    """The model uses a JSON Schema construct that has no structural equivalent."""


def reflow(text: str) -> str:
    """Join wrapped docstring lines; keep blank lines between paragraphs."""
    paragraphs = [" ".join(p.split()) for p in text.strip().split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)


def _merge(target: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(target)
    for key, value in overrides.items():
        if key == VALIDATIONS_KEY:
            merged[key] = [*merged.get(key, []), *value]
        else:
            merged[key] = value
    return merged


def _resolve(node: dict[str, Any], defs: dict[str, Any], path: str) -> dict[str, Any]:
    """Inline `$ref`, single-member `allOf` and nullable `anyOf` until none is left."""
    while True:
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            rest = {k: v for k, v in node.items() if k != "$ref"}
            node = _merge(defs[name], rest)
        elif "allOf" in node and len(node["allOf"]) == 1:
            rest = {k: v for k, v in node.items() if k != "allOf"}
            node = _merge(node["allOf"][0], rest)
        elif "anyOf" in node:
            members = [m for m in node["anyOf"] if m != {"type": "null"}]
            if len(members) != 1:
                raise SchemaError(f"{path}: a union of several types is not structural")
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            if rest.get("default", "absent") is None:
                del rest["default"]
            node = _merge(members[0], rest)
        else:
            return node


def _keep_default(value: Any, node: dict[str, Any]) -> bool:
    if value is None or value == []:
        return False
    if isinstance(value, dict):
        return "properties" in node
    return True


def _scalar(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def to_structural(
    node: dict[str, Any], defs: dict[str, Any], *, defaults: bool = True, path: str = ""
) -> dict[str, Any]:
    """Rewrite one pydantic JSON Schema node (and everything below it)."""
    node = _resolve(node, defs, path)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED or (key == "additionalProperties" and value is False):
            continue
        if key in ("oneOf", "not", "uniqueItems", "const", "$ref"):
            raise SchemaError(f"{path}: {key} is not allowed in a structural schema")
        if key == "properties":
            out[key] = {
                name: to_structural(sub, defs, defaults=defaults, path=f"{path}.{name}")
                for name, sub in value.items()
            }
        elif key == "items":
            out[key] = to_structural(value, defs, defaults=defaults, path=f"{path}[]")
        elif key == "additionalProperties":
            out[key] = to_structural(value, defs, defaults=defaults, path=f"{path}{{}}")
        elif key == "description":
            out[key] = reflow(value)
        elif key == "required":
            out[key] = sorted(value)
        elif key != "default":
            out[key] = value
    if "default" in node and defaults and _keep_default(node["default"], node):
        out["default"] = node["default"]
        if not isinstance(out["default"], dict):
            # `kubectl explain` prints descriptions but not defaults.
            text = out.get("description", "")
            out["description"] = f"{text} Defaults to `{_scalar(out['default'])}`.".strip()
    if out.get("type") == "integer" and "format" not in out:
        maximum = out.get("maximum")
        out["format"] = "int32" if maximum is not None and maximum <= _INT32_MAX else "int64"
    if "type" not in out:
        raise SchemaError(f"{path}: no type")
    return out


def model_schema(schema: dict[str, Any], *, defaults: bool = True) -> dict[str, Any]:
    """Convert a whole `model_json_schema()` result (root plus its `$defs`)."""
    return to_structural(schema, schema.get("$defs", {}), defaults=defaults)
