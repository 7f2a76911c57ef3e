"""The Python models reject every manifest the API server must reject, at the same field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api_cases import Case, bases, invalid_cases, invalid_updates
from trustspace.api import parse_resource
from trustspace.api.rules import field_path

pytestmark = pytest.mark.unit

CASES = invalid_cases()


@pytest.mark.parametrize("name", sorted(bases()))
def test_base_manifest_is_valid(name: str) -> None:
    # Each case must fail because of its patch, so the object it patches must be valid.
    parse_resource(bases()[name])


def test_corpus_is_large_and_distinct() -> None:
    names = [c.name for c in CASES]
    assert len(set(names)) == len(names) >= 25
    manifests = [repr(c.manifest(bases())) for c in CASES]
    assert len(set(manifests)) == len(manifests)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_models_reject_case_at_field(case: Case) -> None:
    with pytest.raises(ValidationError) as info:
        parse_resource(case.manifest(bases()))
    errors = {field_path(e["loc"]): e["msg"] for e in info.value.errors()}
    assert case.field in errors, f"errors name {sorted(errors)}, not {case.field}"
    if case.message:
        assert case.message in errors[case.field]


@pytest.mark.parametrize("case", invalid_updates(), ids=lambda c: c.name)
def test_update_cases_are_valid_objects(case: Case) -> None:
    # Transition rules are the API server's alone: the patched object is valid on its own,
    # so a rejection in the integration test can only come from `self == oldSelf`.
    parse_resource(case.manifest(bases()))
