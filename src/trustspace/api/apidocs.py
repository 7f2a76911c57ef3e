"""`docs/api.md`, rendered from the generated CRD schemas so the two cannot disagree."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from trustspace.api.constants import API_VERSION
from trustspace.api.resource import Resource
from trustspace.api.rules import VALIDATIONS_KEY

_TRANSITION_RULE = "self == oldSelf"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n\n", "<br><br>").replace("\n", " ")


def _code(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return f"`{text}`"


def _short_type(node: dict[str, Any]) -> str:
    kind = str(node["type"])
    if kind == "array":
        return "[]" + _short_type(node["items"])
    if kind == "object" and "additionalProperties" in node:
        return "map[string]" + _short_type(node["additionalProperties"])
    if node.get("format") in ("date-time", "int32", "int64"):
        return f"{kind} ({node['format']})"
    return kind


def _constraints(node: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if "enum" in node:
        out.append("one of " + ", ".join(_code(v) for v in node["enum"]))
    if "pattern" in node:
        out.append("pattern " + _code(node["pattern"]))
    lo, hi = node.get("minimum"), node.get("maximum")
    if lo is not None or hi is not None:
        out.append(f"range {'' if lo is None else lo}..{'' if hi is None else hi}")
    for key, label in (
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minItems", "min items"),
        ("maxItems", "max items"),
        ("maxProperties", "max entries"),
    ):
        if key in node:
            out.append(f"{label} {node[key]}")
    list_type = node.get("x-kubernetes-list-type")
    if list_type == "map":
        keys = ", ".join(node["x-kubernetes-list-map-keys"])
        out.append(f"list keyed by {keys}")
    elif list_type == "set":
        out.append("unique items")
    return out


def _rules(node: dict[str, Any]) -> list[dict[str, str]]:
    return [r for r in node.get(VALIDATIONS_KEY, []) if r["rule"] != _TRANSITION_RULE]


def _row(name: str, node: dict[str, Any], required: bool) -> str:
    type_cell = [_code(_short_type(node))]
    if required:
        type_cell.append("**required**")
    if any(r["rule"] == _TRANSITION_RULE for r in node.get(VALIDATIONS_KEY, [])):
        type_cell.append("immutable")
    type_cell += _constraints(node)
    description = node.get("description", "")
    if isinstance(node.get("default"), dict):
        description += " Filled in with its defaults when omitted."
    if node.get("type") != "object":  # an object's own rules are listed in its section
        for rule in _rules(node):
            description += f" Rule: {rule['message']}."
    return f"| `{name}` | {'<br>'.join(_cell(t) for t in type_cell)} | {_cell(description)} |"


def _objects(path: str, node: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object with properties below `node`, parents first, in declaration order."""
    if node.get("type") == "array":
        yield from _objects(path + "[]", node["items"])
        return
    if "properties" not in node:
        return
    yield path, node
    for name, sub in node["properties"].items():
        yield from _objects(f"{path}.{name}", sub)


def _object_section(kind: str, path: str, node: dict[str, Any]) -> list[str]:
    lines = [f"### `{kind}.{path}`", "", node.get("description", ""), ""]
    rules = [r for r in _rules(node) if node.get("type") == "object"]
    if rules:
        lines.append("Rules checked by the API server:")
        lines.append("")
        for rule in rules:
            where = f"`{path}{rule.get('fieldPath', '')}`"
            lines.append(f"- {where}: {rule['message']}.")
        lines.append("")
    lines += ["| Field | Type | Description |", "| --- | --- | --- |"]
    required = set(node.get("required", []))
    for name, sub in node["properties"].items():
        lines.append(_row(name, sub, name in required))
    lines.append("")
    return lines


def _kind_section(cls: type[Resource], crd: dict[str, Any]) -> list[str]:
    info = cls.crd
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    lines = [
        f"## {info.kind}",
        "",
        schema["description"],
        "",
        f"- API version: `{API_VERSION}`, namespaced, status subresource",
        f"- Plural `{info.plural}`, short names "
        + ", ".join(f"`{n}`" for n in info.short_names)
        + ", categories "
        + ", ".join(f"`{c}`" for c in info.categories),
        "",
        f"`kubectl get {info.short_names[0]}` shows:",
        "",
        "| Column | From | Description |",
        "| --- | --- | --- |",
    ]
    for column in version["additionalPrinterColumns"]:
        wide = " (with `-o wide`)" if column.get("priority") else ""
        lines.append(
            f"| {column['name']} | {_cell(_code(column['jsonPath']))} | "
            f"{_cell(column['description'])}{wide} |"
        )
    lines.append("")
    for part in ("spec", "status"):
        for path, node in _objects(part, schema["properties"][part]):
            lines += _object_section(info.kind, path, node)
    return lines


def render_docs(kinds: Sequence[tuple[type[Resource], dict[str, Any]]]) -> str:
    lines = [
        f"# {API_VERSION} API reference",
        "",
        "<!-- Generated by `python -m trustspace.api.crdgen` from src/trustspace/api/. "
        "Do not edit: change the models and regenerate. -->",
        "",
        "Every field below is also documented in the cluster: "
        "`kubectl explain dataspacenode.spec.keyRotation`. Durations are strings such as "
        "`30s`, `15m` or `720h`; quantities are strings such as `512Mi` or `1Gi`; times are "
        "RFC 3339 in UTC.",
        "",
        "Kinds: " + ", ".join(f"[{cls.crd.kind}](#{cls.crd.kind.lower()})" for cls, _ in kinds),
        "",
    ]
    for cls, crd in kinds:
        lines += _kind_section(cls, crd)
    return "\n".join(lines).rstrip("\n") + "\n"
