"""Types shared by the three resources: durations, quantities, timestamps, names, references.

Durations and quantities stay strings on the wire, as in core Kubernetes (`720h`, `1Gi`):
users write them that way and the API server parses them in CEL with `duration()` and
`quantity()`. `parse_duration` and `parse_quantity` give Python the same reading.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, PlainSerializer, StringConstraints

from trustspace import clock
from trustspace.api.rules import Rule, SpecModel

# --- durations ----------------------------------------------------------------------------

# Go's time.ParseDuration syntax (what CEL's duration() reads), without sign or bare "0".
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s|m|h)")
_DURATION_UNIT = {
    "ns": Decimal("1e-9"),
    "us": Decimal("1e-6"),
    "ms": Decimal("1e-3"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
}

Duration = Annotated[str, StringConstraints(pattern=DURATION_PATTERN, max_length=32)]


def parse_duration(text: str) -> timedelta:
    """Read a Go-style duration such as `1h30m` or `720h`."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"not a duration: {text!r} (expected e.g. 30s, 15m, 720h)")
    seconds = sum(
        Decimal(number) * _DURATION_UNIT[unit] for number, unit in _DURATION_PART.findall(text)
    )
    return timedelta(seconds=float(seconds))


def format_duration(delta: timedelta) -> str:
    """Write a duration the way Kubernetes users read them: `90s`, `15m`, `2h30m`."""
    total = int(delta.total_seconds())
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((hours, "h"), (minutes, "m"), (seconds, "s")) if v]
    return "".join(parts) or "0s"


def duration_between(low: str, high: str) -> Rule:
    """Bounds on a duration, checked by the API server with CEL and in Python alike."""
    lo, hi = parse_duration(low), parse_duration(high)
    return Rule(
        cel=f"duration(self) >= duration('{low}') && duration(self) <= duration('{high}')",
        message=f"must be between {low} and {high}",
        check=lambda v: lo <= parse_duration(v) <= hi,
    )


# --- quantities ---------------------------------------------------------------------------

# resource.Quantity without a sign: 512Mi, 1Gi, 1.5G, 100k, 1e6.
QUANTITY_PATTERN = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[mkMGTPE]|[eE][+-]?[0-9]+)?$"
_QUANTITY_SUFFIX = {
    "": Decimal(1),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}

Quantity = Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN, max_length=32)]


def parse_quantity(text: str) -> Decimal:
    """Read a Kubernetes quantity (`1Gi`, `500M`, `1e6`) as a number of base units."""
    match = re.fullmatch(QUANTITY_PATTERN, text)
    if not match:
        raise ValueError(f"not a quantity: {text!r} (expected e.g. 512Mi, 1Gi, 100M)")
    number, suffix = match.group(1), match.group(3) or ""
    if suffix[:1] in ("e", "E"):
        return Decimal(number) * Decimal(10) ** int(suffix[1:])
    return Decimal(number) * _QUANTITY_SUFFIX[suffix]


def quantity_between(low: str, high: str) -> Rule:
    lo, hi = parse_quantity(low), parse_quantity(high)
    return Rule(
        cel=(
            f"quantity(self).compareTo(quantity('{low}')) >= 0"
            f" && quantity(self).compareTo(quantity('{high}')) <= 0"
        ),
        message=f"must be between {low} and {high}",
        check=lambda v: lo <= parse_quantity(v) <= hi,
    )


# --- timestamps ---------------------------------------------------------------------------


def _aware(value: datetime) -> datetime:
    # Kubernetes times are UTC; a naive datetime from our own code means UTC too.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


Timestamp = Annotated[
    datetime, AfterValidator(_aware), PlainSerializer(clock.rfc3339, when_used="json")
]

# --- names --------------------------------------------------------------------------------

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

#: A Kubernetes object name (DNS-1123 subdomain).
ResourceName = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
]
#: A DNS-1123 label: namespaces, and identifiers that end up in names and labels.
DnsLabel = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
SecretKey = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
]
#: SM3 digests are 256 bits, written as 64 lowercase hex digits (B3).
Sm3Hex = Annotated[str, StringConstraints(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$")]
#: Machine-readable reason, the same syntax as metav1.Condition's reason.
REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
Reason = Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=REASON_PATTERN)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=256)]
LongText = Annotated[str, StringConstraints(max_length=1024)]


def is_https_url(value: str) -> bool:
    """Python mirror of CEL `isURL(self) && url(self).getScheme() == 'https' && ...getHost()`."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme == "https" and bool(parts.hostname) and " " not in value


HttpsUrl = Annotated[
    str,
    StringConstraints(min_length=1, max_length=2048),
    Rule(
        cel="isURL(self) && url(self).getScheme() == 'https' && url(self).getHost() != ''",
        message="must be an absolute https:// URL, e.g. https://gateway.example:8443",
        check=is_https_url,
    ),
]


# --- references ---------------------------------------------------------------------------


class LocalObjectReference(SpecModel):
    """A reference to an object of a known kind in the same namespace."""

    name: ResourceName
    """Name of the object, in this object's namespace."""


class SecretKeySelector(SpecModel):
    """A key of a Secret in this object's namespace."""

    name: ResourceName
    """Name of the Secret, in this object's namespace."""
    key: SecretKey
    """Key within the Secret's data."""


class KubeconfigSecretRef(SpecModel):
    """A Secret in this object's namespace holding a kubeconfig."""

    name: ResourceName
    """Name of the Secret, in this DataSpaceNode's namespace."""
    key: SecretKey = "kubeconfig"
    """Key within the Secret's data that holds the kubeconfig file."""


class SelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=317)]
LabelValue = Annotated[str, StringConstraints(max_length=63)]


def _values_match_operator(req: LabelSelectorRequirement) -> bool:
    has_values = bool(req.values)
    if req.operator in (SelectorOperator.IN, SelectorOperator.NOT_IN):
        return has_values
    return not has_values


class LabelSelectorRequirement(SpecModel):
    """One requirement of a label selector: a key, an operator and values."""

    key: LabelKey
    """Label key the requirement applies to."""
    operator: SelectorOperator
    """How the key relates to the values: `In`, `NotIn`, `Exists` or `DoesNotExist`."""
    values: Annotated[list[LabelValue], Field(max_length=64)] | None = None
    """Label values; non-empty for `In` and `NotIn`, empty for `Exists` and `DoesNotExist`."""

    __rules__ = (
        Rule(
            cel=(
                "self.operator in ['In', 'NotIn']"
                " ? (has(self.values) && size(self.values) > 0)"
                " : (!has(self.values) || size(self.values) == 0)"
            ),
            message="values must be non-empty for In and NotIn, and empty for Exists and "
            "DoesNotExist",
            check=_values_match_operator,
            field_path=".values",
        ),
    )


class LabelSelector(SpecModel):
    """A label query over objects, as in core Kubernetes; `{}` matches every object."""

    match_labels: Annotated[dict[str, LabelValue], Field(max_length=32)] | None = None
    """Labels an object must carry, all of them, with exactly these values."""
    match_expressions: Annotated[list[LabelSelectorRequirement], Field(max_length=16)] | None = None
    """Requirements an object's labels must all satisfy."""


class ResourceRequirements(SpecModel):
    """Compute resources for a container, as in a Pod spec (`cpu`, `memory`, ...)."""

    requests: Annotated[dict[str, Quantity], Field(max_length=8)] | None = None
    """Minimum resources the scheduler reserves, e.g. `{cpu: 100m, memory: 128Mi}`."""
    limits: Annotated[dict[str, Quantity], Field(max_length=8)] | None = None
    """Maximum resources the container may use, e.g. `{memory: 256Mi}`."""


def object_default(factory: type[SpecModel]) -> Any:
    """A nested object the API server fills in with its defaults when the user omits it.

    The CRD default is the whole defaulted object, not `{}`: the API server checks CEL rules
    against a default as written, before nested defaults would apply. Python gets the same
    object from `factory()`, so both sides read identical defaults.
    """
    default = factory().model_dump(mode="json", by_alias=True, exclude_none=True)
    return Field(default_factory=factory, json_schema_extra={"default": default})
