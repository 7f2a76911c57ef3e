"""Loading, overriding and watching jurisdiction profiles (R2, R4).

The built-in profiles ship with the package; the platform team changes them without a
release by passing override documents (files, ConfigMap values, Helm values). Overrides
merge by state and by rule id: a partial document changes only the fields it names, a new
id adds a rule, `disabled: true` switches a built-in one off. A `ProfileSet` carries an SM3
hash of its canonical form so a watcher sees a change, and `diff_profiles` says in words
what changed: the early warning of R4.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from trustspace.api.constants import Jurisdiction
from trustspace.api.rules import format_errors
from trustspace.policy.canonical import sm3_hex
from trustspace.policy.jurisdiction import JurisdictionProfile

#: List fields merged item by item on this key; every other list is replaced whole.
_MERGE_KEYS = {"rules": "id", "riskList": "id"}
#: List fields whose order means nothing; sorted in the canonical form.
_SET_FIELDS = {"classifications", "categories", "acceptedCertifications", "laws"}


class ProfileError(ValueError):
    """A profile document is malformed; the message names its origin and the field."""


@dataclass(frozen=True)
class ProfileOverride:
    """One override document and where it came from (file, `configmap/ns/name:key`, ...)."""

    origin: str
    data: Any


OverrideInput = ProfileOverride | Path | str | Mapping[str, Any]


def _canonical_profile(p: JurisdictionProfile) -> dict[str, Any]:
    data = p.model_dump(mode="json", by_alias=True, exclude_none=True)
    return _sorted_sets(data)  # type: ignore[no-any-return]


def _sorted_sets(value: Any) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in _SET_FIELDS and isinstance(item, list):
                out[key] = sorted(item)
            elif key in _MERGE_KEYS and isinstance(item, list):
                merge_key = _MERGE_KEYS[key]
                out[key] = sorted((_sorted_sets(i) for i in item), key=lambda i: i[merge_key])
            else:
                out[key] = _sorted_sets(item)
        return out
    if isinstance(value, list):
        return [_sorted_sets(v) for v in value]
    return value


@dataclass(frozen=True)
class ProfileSet:
    """The profiles in force, by state, with the SM3 hash of their canonical form."""

    profiles: Mapping[Jurisdiction, JurisdictionProfile]
    origins: tuple[str, ...] = ()
    data: dict[str, Any] = field(init=False, compare=False, repr=False)
    hash: str = field(init=False)

    def __post_init__(self) -> None:
        data = {str(j): _canonical_profile(p) for j, p in sorted(self.profiles.items())}
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "hash", sm3_hex(data))

    def get(self, jurisdiction: str) -> JurisdictionProfile | None:
        return self.profiles.get(Jurisdiction(jurisdiction))

    def __iter__(self) -> Iterator[JurisdictionProfile]:
        return iter(self.profiles[j] for j in sorted(self.profiles))

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> ProfileSet:
        """Rebuild from the canonical form (as carried in a bundle)."""
        profiles = {
            Jurisdiction(j): _validate(doc, origin="bundle", where=f"profiles.{j}")
            for j, doc in data.items()
        }
        return cls(profiles)


def builtin_profile_docs() -> dict[str, dict[str, Any]]:
    """The shipped `profiles/*.yaml`, by state."""
    root = resources.files("trustspace.policy").joinpath("profiles")
    docs: dict[str, dict[str, Any]] = {}
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        doc = _parse_yaml(entry.read_text(encoding="utf-8"), origin=f"builtin:{entry.name}")
        if not isinstance(doc, dict) or "jurisdiction" not in doc:
            raise ProfileError(f"builtin:{entry.name}: not a profile (no jurisdiction)")
        docs[str(doc["jurisdiction"])] = doc
    return docs


def load_profiles(*, builtin: bool = True, overrides: Sequence[OverrideInput] = ()) -> ProfileSet:
    """The built-in profiles (unless `builtin=False`) with `overrides` applied in order.

    Each override is a path, a mapping, or a `ProfileOverride`; its document is a single
    profile (has `jurisdiction`), a list of profiles, or `{profiles: [...]}`. Raises
    `ProfileError` naming the origin and the field on bad input.
    """
    docs: dict[str, dict[str, Any]] = builtin_profile_docs() if builtin else {}
    origins = ["builtin"] if builtin else []
    for index, raw in enumerate(overrides):
        override = _as_override(raw, index)
        origins.append(override.origin)
        for position, partial in enumerate(_profile_entries(override)):
            where = f"profiles[{position}]"
            state = partial.get("jurisdiction")
            try:
                key = str(Jurisdiction(str(state)))
            except ValueError:
                raise ProfileError(
                    f"{override.origin}: {where}.jurisdiction: {state!r} is not one of "
                    f"{', '.join(j.value for j in Jurisdiction)}"
                ) from None
            merged = _merge(docs.get(key, {}), partial)
            _validate(merged, origin=override.origin, where=where)
            docs[key] = merged
    profiles = {
        Jurisdiction(j): _validate(doc, origin="builtin", where=f"profiles.{j}")
        for j, doc in docs.items()
    }
    return ProfileSet(profiles, tuple(origins))


def overrides_from_configmap(configmap: Mapping[str, Any]) -> list[ProfileOverride]:
    """One override per `data` key of a ConfigMap (keys in sorted order, so the merge order
    does not depend on how the API server listed them)."""
    meta = configmap.get("metadata", {})
    name = f"configmap/{meta.get('namespace', '')}/{meta.get('name', '')}"
    data = configmap.get("data") or {}
    return [
        ProfileOverride(f"{name}:{key}", _parse_yaml(str(text), origin=f"{name}:{key}"))
        for key, text in sorted(data.items())
    ]


def _as_override(raw: OverrideInput, index: int) -> ProfileOverride:
    if isinstance(raw, ProfileOverride):
        return raw
    if isinstance(raw, str | Path):
        path = Path(raw)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ProfileError(f"{path}: cannot read: {exc.strerror}") from exc
        return ProfileOverride(str(path), _parse_yaml(text, origin=str(path)))
    return ProfileOverride(f"overrides[{index}]", copy.deepcopy(dict(raw)))


def _parse_yaml(text: str, *, origin: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{origin}: not YAML: {exc}") from exc


def _profile_entries(override: ProfileOverride) -> list[dict[str, Any]]:
    doc = override.data
    if isinstance(doc, dict) and "profiles" in doc and "jurisdiction" not in doc:
        doc = doc["profiles"]
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list) or not all(isinstance(d, dict) for d in doc):
        raise ProfileError(
            f"{override.origin}: expected a profile, a list of profiles or {{profiles: [...]}}"
        )
    return doc


def _merge(base: Any, patch: Any, key: str | None = None) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = _merge(base.get(k), v, k) if k in base else copy.deepcopy(v)
        return out
    if key in _MERGE_KEYS and isinstance(base, list) and isinstance(patch, list):
        merge_key = _MERGE_KEYS[key]
        out_list = [copy.deepcopy(i) for i in base]
        index = {i.get(merge_key): n for n, i in enumerate(out_list) if isinstance(i, dict)}
        for item in patch:
            ident = item.get(merge_key) if isinstance(item, dict) else None
            if ident is not None and ident in index:
                out_list[index[ident]] = _merge(out_list[index[ident]], item)
            else:
                out_list.append(copy.deepcopy(item))
        return out_list
    return copy.deepcopy(patch)


def _validate(doc: Any, *, origin: str, where: str) -> JurisdictionProfile:
    try:
        return JurisdictionProfile.model_validate(doc)
    except ValidationError as exc:
        lines = "; ".join(f"{where}.{line}" for line in format_errors(exc))
        raise ProfileError(f"{origin}: {lines}") from None


# --- R4: what changed -----------------------------------------------------------------------


def diff_profiles(old: ProfileSet, new: ProfileSet) -> list[str]:
    """Human-readable lines saying what changed between two profile sets (R4 early warning).

    Empty when nothing changed."""
    lines: list[str] = []
    for state in sorted(set(old.data) | set(new.data)):
        before, after = old.data.get(state), new.data.get(state)
        if before is None:
            lines.append(f"{state}: profile added")
            continue
        if after is None:
            lines.append(f"{state}: profile removed")
            continue
        for key in ("rules", "riskList"):
            lines.extend(_diff_items(state, key, before.get(key, []), after.get(key, [])))
        rest_before = {k: v for k, v in before.items() if k not in _MERGE_KEYS}
        rest_after = {k: v for k, v in after.items() if k not in _MERGE_KEYS}
        lines.extend(f"{state}: {line}" for line in _diff_values("", rest_before, rest_after))
    return lines


def _diff_items(
    state: str, key: str, before: Iterable[dict[str, Any]], after: Iterable[dict[str, Any]]
) -> list[str]:
    label = "rule" if key == "rules" else "risk"
    old = {i["id"]: i for i in before}
    new = {i["id"]: i for i in after}
    lines: list[str] = []
    for ident in sorted(set(old) | set(new)):
        if ident not in old:
            lines.append(f"{state}: {label} {ident} added: {_summary(new[ident])}")
        elif ident not in new:
            lines.append(f"{state}: {label} {ident} removed")
        else:
            lines.extend(
                f"{state}: {label} {ident}: {line}"
                for line in _diff_values("", old[ident], new[ident])
            )
    return lines


def _summary(item: dict[str, Any]) -> str:
    if "effect" in item:
        scope = "/".join(item.get("classifications", ["all"]))
        cats = ",".join(item.get("categories", ["any category"]))
        return f"{item.get('direction', 'outbound')} {scope} {cats} -> {item['effect']}"
    return str(item.get("message", ""))[:120]


def _diff_values(path: str, before: Any, after: Any) -> list[str]:
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        lines: list[str] = []
        for key in sorted(set(before) | set(after)):
            sub = f"{path}.{key}" if path else key
            if key not in before:
                lines.append(f"{sub} set to {_short(after[key])}")
            elif key not in after:
                lines.append(f"{sub} removed (was {_short(before[key])})")
            else:
                lines.extend(_diff_values(sub, before[key], after[key]))
        return lines
    return [f"{path or 'value'}: {_short(before)} -> {_short(after)}"]


def _short(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("...").strip()
    return text if len(text) <= 100 else text[:97] + "..."


# --- live reload ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileChange:
    old: ProfileSet
    new: ProfileSet
    summary: list[str]


class ProfileWatcher:
    """Re-reads override files on `poll()` and reports a change when the profile hash moves.

    Callers (the operator's recompile loop, `kopf` timers) poll; nothing runs in the
    background. A broken override keeps the last good set in force and is reported through
    `last_error`, so a typo in a ConfigMap never drops the constraints.
    """

    def __init__(self, overrides: Sequence[OverrideInput] = (), *, builtin: bool = True):
        self._overrides = list(overrides)
        self._builtin = builtin
        self.current = load_profiles(builtin=builtin, overrides=self._overrides)
        self.last_error: str | None = None

    def set_overrides(self, overrides: Sequence[OverrideInput]) -> ProfileChange | None:
        """Replace the override inputs (e.g. a new ConfigMap) and reload."""
        self._overrides = list(overrides)
        return self.poll()

    def poll(self) -> ProfileChange | None:
        try:
            candidate = load_profiles(builtin=self._builtin, overrides=self._overrides)
        except ProfileError as exc:
            self.last_error = str(exc)
            return None
        self.last_error = None
        if candidate.hash == self.current.hash:
            return None
        change = ProfileChange(self.current, candidate, diff_profiles(self.current, candidate))
        self.current = candidate
        return change
