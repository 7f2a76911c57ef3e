"""Invalid trustspace.io manifests shared by unit and integration tests (see invalid.yaml).

Importable as `api_cases` because pytest puts `tests/` on sys.path for tests/conftest.py.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CASES_FILE = Path(__file__).with_name("invalid.yaml")


@dataclass(frozen=True)
class Case:
    name: str
    base: str
    patch: dict[str, Any]
    field: str
    message: str | None

    def manifest(self, bases: dict[str, dict[str, Any]]) -> dict[str, Any]:
        patched = merge_patch(bases[self.base], self.patch)
        assert isinstance(patched, dict)
        return patched


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _load() -> dict[str, Any]:
    with CASES_FILE.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, dict)
    return data


def bases() -> dict[str, dict[str, Any]]:
    loaded: dict[str, dict[str, Any]] = _load()["bases"]
    return loaded


def _cases(section: str) -> list[Case]:
    return [
        Case(c["name"], c["base"], c["patch"], c["field"], c.get("message"))
        for c in _load()[section]
    ]


def invalid_cases() -> list[Case]:
    """Manifests rejected on create."""
    return _cases("cases")


def invalid_updates() -> list[Case]:
    """Patches rejected on update of a valid base (transition rules)."""
    return _cases("updates")
