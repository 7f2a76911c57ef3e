"""The generated CRD schemas are structural, bounded and self-describing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from trustspace.api import RESOURCES, Resource
from trustspace.api.crdgen import build_crd
from trustspace.api.rules import Rule

pytestmark = pytest.mark.unit

Node = dict[str, Any]


def _schema(cls: type[Resource]) -> Node:
    schema: Node = build_crd(cls)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _walk(node: Node, path: str = "") -> Iterator[tuple[str, Node]]:
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


def _all_nodes() -> Iterator[tuple[str, str, Node]]:
    for cls in RESOURCES:
        for path, node in _walk(_schema(cls)):
            yield cls.crd.kind, path, node


def test_every_field_is_described_except_metadata() -> None:
    undescribed = [
        f"{kind}{path}"
        for kind, path, node in _all_nodes()
        if not path.endswith("{}") and not path.endswith("[]") and path != ".metadata"
        if len(node.get("description", "")) < 10
    ]
    assert undescribed == []
    for cls in RESOURCES:
        assert _schema(cls)["properties"]["metadata"] == {"type": "object"}


def test_schema_is_structural() -> None:
    forbidden = {
        "$ref",
        "$defs",
        "anyOf",
        "allOf",
        "oneOf",
        "not",
        "title",
        "uniqueItems",
        "const",
        "propertyNames",
        "nullable",
    }
    for kind, path, node in _all_nodes():
        where = f"{kind}{path}"
        assert "type" in node, where
        assert not forbidden & node.keys(), (where, forbidden & node.keys())
        assert node.get("additionalProperties", True) is not False, where
        assert "x-kubernetes-preserve-unknown-fields" not in node, where


def test_every_string_list_and_map_is_bounded() -> None:
    # Unbounded strings and lists make the API server's CEL cost estimate fail, and let
    # status grow with traffic.
    for kind, path, node in _all_nodes():
        where = f"{kind}{path}"
        if node["type"] == "string" and path not in (".apiVersion", ".kind"):
            assert "maxLength" in node or "enum" in node or node.get("format") == "date-time", where
        if node["type"] == "array":
            assert "maxItems" in node, where
        if node["type"] == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, where


def test_no_defaults_under_status() -> None:
    for kind, path, node in _all_nodes():
        if path.startswith(".status"):
            assert "default" not in node, f"{kind}{path}"


def _conditions(cls: type[Resource]) -> Node:
    node: Node = _schema(cls)["properties"]["status"]["properties"]["conditions"]
    return node


@pytest.mark.parametrize("cls", RESOURCES, ids=lambda c: c.crd.kind)
def test_conditions_match_metav1_condition(cls: type[Resource]) -> None:
    # The shape and validation of k8s.io/apimachinery/pkg/apis/meta/v1.Condition.
    conditions = _conditions(cls)
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert sorted(item["required"]) == ["lastTransitionTime", "message", "reason", "status", "type"]
    props = item["properties"]
    assert props["type"]["maxLength"] == 316
    assert props["type"]["pattern"] == (
        r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
    )
    assert props["status"]["enum"] == ["True", "False", "Unknown"]
    assert props["reason"]["pattern"] == r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
    assert (props["reason"]["minLength"], props["reason"]["maxLength"]) == (1, 1024)
    assert props["message"]["maxLength"] == 32768
    assert props["lastTransitionTime"]["format"] == "date-time"
    assert props["observedGeneration"]["minimum"] == 0
    assert props["observedGeneration"]["format"] == "int64"


@pytest.mark.parametrize("cls", RESOURCES, ids=lambda c: c.crd.kind)
def test_crd_metadata(cls: type[Resource]) -> None:
    crd = build_crd(cls)
    names = crd["spec"]["names"]
    assert crd["spec"]["scope"] == "Namespaced"
    assert names["categories"] == ["trustspace"]
    assert crd["metadata"]["name"] == f"{names['plural']}.trustspace.io"
    (version,) = crd["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    assert version["additionalPrinterColumns"][-1]["jsonPath"] == ".metadata.creationTimestamp"
    status = _schema(cls)["properties"]["status"]["properties"]
    assert status["observedGeneration"]["type"] == "integer"


def test_short_names() -> None:
    short = {cls.crd.kind: build_crd(cls)["spec"]["names"]["shortNames"] for cls in RESOURCES}
    assert short == {"DataSpaceNode": ["dsn"], "TransferPolicy": ["tp"], "MirrorLink": ["ml"]}


def _model_rules() -> Iterator[Rule]:
    seen: set[type] = set()

    def visit(model: type) -> Iterator[Rule]:
        if model in seen or not hasattr(model, "model_fields"):
            return
        seen.add(model)
        yield from getattr(model, "__rules__", ())
        for field in model.model_fields.values():
            for arg in _types_in(field.annotation):
                yield from visit(arg)
            yield from (m for m in field.metadata if isinstance(m, Rule))

    for cls in RESOURCES:
        yield from visit(cls.spec_model)


def _types_in(annotation: Any) -> Iterator[Any]:
    yield annotation
    for arg in getattr(annotation, "__args__", ()):
        yield from _types_in(arg)
    for meta in getattr(annotation, "__metadata__", ()):
        if isinstance(meta, Rule):
            yield meta


def test_every_python_rule_is_in_a_crd() -> None:
    emitted = [
        (r["rule"], r["message"])
        for _, _, node in _all_nodes()
        for r in node.get("x-kubernetes-validations", [])
    ]
    rules = list(_model_rules())
    assert len(rules) >= 15
    for rule in rules:
        assert (rule.cel, rule.message) in emitted, rule.message


def test_cross_field_rules_point_at_fields_that_exist() -> None:
    for kind, path, node in _all_nodes():
        for rule in node.get("x-kubernetes-validations", []):
            target = node
            for part in rule.get("fieldPath", "").split(".")[1:]:
                assert part in target.get("properties", {}), f"{kind}{path}: {rule}"
                target = target["properties"][part]


def test_spec_defaults_are_what_the_models_default_to() -> None:
    # A node with only required fields, defaulted the way the API server would (walking the
    # schema), must equal the model's own defaults: one source of truth, two readers.
    for cls in RESOURCES:
        spec_schema = _schema(cls)["properties"]["spec"]
        python = cls.spec_model.model_fields
        for name, prop in spec_schema["properties"].items():
            if "default" not in prop:
                continue
            field = next(f for n, f in python.items() if (f.alias or n) == name)
            model_default = field.get_default(call_default_factory=True)
            if hasattr(model_default, "model_dump"):
                model_default = model_default.model_dump(
                    mode="json", by_alias=True, exclude_none=True
                )
            assert prop["default"] == model_default, f"{cls.crd.kind}.spec.{name}"
