"""The basic desensitisation tool (B6): mask, pseudonymise, generalise, drop, on JSON records.

Field paths are dotted with `[*]` for every list item (`patient.idNumber`, `items[*].owner`),
as in `Desensitisation.field`. Missing fields are left alone: a record that lacks a field
has nothing to hide there. Records are never modified in place.

Pseudonyms are HMAC-SM3 tokens under a key *per link* (`derive_link_key`), so the same
person gets the same token on one link, and records still join there, but tokens from two
links cannot be joined with each other.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from trustspace.crypto import hmac_sm3
from trustspace.policy.decision import FieldProtection

PSEUDONYM_PREFIX = "sm3h:"
_DATE = re.compile(r"^(\d{4})-(\d{2})(-\d{2})?([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$")
_PATH_PART = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)(\[\*\])?$")

KeyResolver = Callable[[FieldProtection], bytes]


def derive_link_key(secret: bytes, link: str) -> bytes:
    """The pseudonymisation key of one MirrorLink, from the Secret named by the policy."""
    return hmac_sm3(secret, b"trustspace/pseudonymise/v1/" + link.encode("utf-8"))


# --- the four methods ---------------------------------------------------------------------------


def mask(value: Any, keep_first: int = 0, keep_last: int = 4, mask_character: str = "*") -> str:
    """`13812345678` -> `138****5678` with keep_first=3, keep_last=4. Values too short to
    keep both ends are masked whole: a partly visible short value leaks most of itself."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if keep_first + keep_last >= len(text):
        return mask_character * len(text)
    end = len(text) - keep_last
    return text[:keep_first] + mask_character * (end - keep_first) + text[end:]


def pseudonymise(value: Any, key: bytes) -> str:
    """A stable token: HMAC-SM3 of the value's JSON form, so `1` and `"1"` differ."""
    data = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return PSEUDONYM_PREFIX + hmac_sm3(key, data.encode("utf-8")).hex()


def generalise(value: Any, level: int = 1) -> Any:
    """Coarsen a value by `level` steps (1..5).

    Numbers become ranges of width 10**level (`37` -> `"30-39"` at level 1); dates lose the
    day, then the month (`2024-05-17` -> `2024-05`, then `2024`); coordinates
    (`{lat, lon}` or `[lat, lon]`) keep 3 - level decimals (level 1 is about 1 km) and,
    past that, round to tens of degrees; other strings keep a prefix and hide 2 characters
    per level (`530021` -> `5300**`); booleans and null are returned unchanged.
    """
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        width = 10**level
        low = int(value // width) * width
        return f"{low}-{low + width - 1}"
    if isinstance(value, Mapping) and _is_coordinate(value):
        return {k: (_round_geo(v, level) if k in _GEO_KEYS else v) for k, v in value.items()}
    if isinstance(value, list) and len(value) == 2 and all(_is_number(v) for v in value):
        return [_round_geo(v, level) for v in value]
    if isinstance(value, str):
        date = _DATE.match(value)
        if date:
            return f"{date.group(1)}-{date.group(2)}" if level == 1 else date.group(1)
        hidden = min(len(value), 2 * level)
        return value[: len(value) - hidden] + "*" * hidden
    return value


_GEO_KEYS = {"lat", "lon", "lng", "latitude", "longitude"}


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_coordinate(value: Mapping[str, Any]) -> bool:
    geo = [k for k in value if k in _GEO_KEYS]
    return len(geo) >= 2 and all(_is_number(value[k]) for k in geo)


def _round_geo(v: float, level: int) -> float | int:
    decimals = 3 - level
    if decimals >= 0:
        return round(float(v), decimals)
    return int(round(v / 10) * 10)


# --- records ------------------------------------------------------------------------------------


def _parse_path(path: str) -> list[tuple[str, bool]]:
    parts = []
    for raw in path.split("."):
        match = _PATH_PART.match(raw)
        if not match:
            raise ValueError(f"bad field path {path!r} at {raw!r}")
        parts.append((match.group(1), match.group(2) is not None))
    return parts


def _apply(
    node: Any, parts: list[tuple[str, bool]], change: Callable[[dict[str, Any], str], None]
) -> None:
    if not parts or not isinstance(node, dict):
        return
    (name, every), rest = parts[0], parts[1:]
    if name not in node:
        return
    if every:
        items = node[name]
        if not isinstance(items, list):
            return
        if not rest:
            # `tags[*]` names each item as a value of its own; a dropped item disappears.
            kept = []
            for item in items:
                holder = {"v": item}
                change(holder, "v")
                if "v" in holder:
                    kept.append(holder["v"])
            node[name] = kept
            return
        for item in items:
            _apply(item, rest, change)
        return
    if rest:
        _apply(node[name], rest, change)
    else:
        change(node, name)


def desensitise(
    record: Mapping[str, Any],
    protections: Iterable[FieldProtection],
    key_for: KeyResolver | None = None,
) -> dict[str, Any]:
    """A copy of `record` with each protection applied (B6).

    `key_for` gives the HMAC-SM3 key of a pseudonymise protection (resolve its
    `keySecretRef`, then `derive_link_key`); a pseudonymise protection without one raises
    `ValueError` rather than letting the field through. Drops run last, so a drop of a
    parent cannot be undone by a child's mask.
    """
    out: dict[str, Any] = copy.deepcopy(dict(record))
    ordered = sorted(protections, key=lambda p: (p.method == "drop", p.field))
    for protection in ordered:
        _apply(out, _parse_path(protection.field), _changer(protection, key_for))
    return out


def _changer(
    protection: FieldProtection, key_for: KeyResolver | None
) -> Callable[[dict[str, Any], str], None]:
    method = protection.method
    if method == "drop":

        def drop_field(holder: dict[str, Any], name: str) -> None:
            del holder[name]

        return drop_field
    if method == "mask":
        first = int(protection.option("keepFirst", 0))
        last = int(protection.option("keepLast", 4))
        char = str(protection.option("maskCharacter", "*"))

        def do_mask(holder: dict[str, Any], name: str) -> None:
            if holder[name] is not None:
                holder[name] = mask(holder[name], first, last, char)

        return do_mask
    if method == "generalise":
        level = int(protection.option("level", 1))

        def do_generalise(holder: dict[str, Any], name: str) -> None:
            holder[name] = generalise(holder[name], level)

        return do_generalise
    if method == "pseudonymise":
        if key_for is None:
            raise ValueError(f"no key for pseudonymising {protection.field}")
        key = key_for(protection)

        def do_pseudonymise(holder: dict[str, Any], name: str) -> None:
            if holder[name] is not None:
                holder[name] = pseudonymise(holder[name], key)

        return do_pseudonymise
    raise ValueError(f"unknown desensitisation method {method!r}")
