"""MirrorLink: datasets mirrored from one DataSpaceNode to another (B1, B7, B8)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from trustspace.api.common import (
    DnsLabel,
    Duration,
    LocalObjectReference,
    LongText,
    Quantity,
    Reason,
    ResourceName,
    Timestamp,
    duration_between,
    object_default,
    quantity_between,
)
from trustspace.api.conditions import Conditions
from trustspace.api.constants import (
    MIRRORLINK_KIND,
    MIRRORLINK_PLURAL,
    MIRRORLINK_SHORT_NAMES,
    BreakerState,
    Classification,
    DataCategory,
    LinkState,
)
from trustspace.api.resource import AGE_COLUMN, CrdInfo, PrinterColumn, Resource
from trustspace.api.rules import ListType, Rule, SpecModel, StatusModel, immutable


class Dataset(SpecModel):
    """A catalogue entry mirrored over the link, with the labels policies decide on."""

    name: DnsLabel
    """Name of the dataset on this link; audit records and status quote it."""
    catalog_entry: ResourceName | None = None
    """Entry in the source node's data catalogue; defaults to `name`."""
    classification: Classification
    """Classification level of the data (R1): `public`, `internal`, `important` or `core`."""
    categories: Annotated[list[DataCategory], ListType("set"), Field(min_length=1, max_length=16)]
    """Categories of the data, e.g. `[logistics, trade]`."""


class SyncMode(StrEnum):
    CONTINUOUS = "Continuous"
    INTERVAL = "Interval"


class SyncSchedule(SpecModel):
    """When the destination's mirror is brought up to date."""

    mode: SyncMode = SyncMode.INTERVAL
    """`Continuous` streams changes as they happen; `Interval` syncs every `interval`."""
    interval: Annotated[Duration, duration_between("1m", "168h")] = "15m"
    """Time between syncs in `Interval` mode, e.g. `15m`."""
    suspend: bool = False
    """Pause syncing without deleting the link; transfers in flight finish."""


def _distinct_ends(s: MirrorLinkSpec) -> bool:
    return s.source.name != s.destination.name


class MirrorLinkSpec(SpecModel):
    """Desired state of a MirrorLink."""

    source: Annotated[LocalObjectReference, immutable("source")]
    """DataSpaceNode the data is mirrored from. Immutable."""
    destination: Annotated[LocalObjectReference, immutable("destination")]
    """DataSpaceNode the data is mirrored to. Immutable."""
    datasets: Annotated[
        list[Dataset], ListType("map", ("name",)), Field(min_length=1, max_length=64)
    ]
    """Datasets mirrored over the link."""
    sync: SyncSchedule = object_default(SyncSchedule)
    """Sync schedule."""
    max_bandwidth: Annotated[Quantity, quantity_between("1Ki", "100Gi")] | None = None
    """Bandwidth cap in bytes per second, e.g. `50Mi`; unlimited when empty."""
    policy_refs: Annotated[
        list[LocalObjectReference], ListType("map", ("name",)), Field(min_length=1, max_length=16)
    ]
    """TransferPolicies that govern the link. Every transfer must be allowed by them; one
    that none covers is denied."""

    __rules__ = (
        Rule(
            cel="self.source.name != self.destination.name",
            message="source and destination must be different DataSpaceNodes",
            check=_distinct_ends,
            field_path=".destination.name",
        ),
    )


class TransferCounts(StatusModel):
    """Transfers over the link since it was created, by outcome."""

    allowed: Annotated[int, Field(ge=0)] = 0
    """Transfers that crossed."""
    denied: Annotated[int, Field(ge=0)] = 0
    """Transfers a policy denied."""
    in_review: Annotated[int, Field(ge=0)] = 0
    """Transfers waiting for approval now."""


class CircuitBreakerStatus(StatusModel):
    """State of the link's circuit breaker (B8)."""

    state: BreakerState
    """`Closed` lets data flow, `Open` cuts it, `HalfOpen` lets probes through after the
    cool-down."""
    tripped_at: Timestamp | None = None
    """When the breaker last opened."""
    reason: Reason | None = None
    """Why it last opened: `DeniedBurst`, `InvalidSignatures`, `VolumeSpike` or
    `ManualTrip`."""
    message: LongText | None = None
    """Details of the last trip."""
    resume_at: Timestamp | None = None
    """When the breaker will try to close; empty while it waits for a manual reset."""
    trips: Annotated[int, Field(ge=0)] | None = None
    """Times the breaker has opened since the link was created."""


class MirrorLinkStatus(StatusModel):
    """Observed state of a MirrorLink, written by the operator."""

    state: LinkState | None = None
    """`Pending`, `Established`, `Degraded` or `Tripped` (circuit breaker open)."""
    conditions: Conditions = Field(default_factory=list)
    """Current state: `Ready`, `NodesReady`, `PoliciesResolved`, `Synced`,
    `CircuitBreakerTripped`."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The `metadata.generation` this status was computed from."""
    last_sync_time: Timestamp | None = None
    """When the last sync finished."""
    next_sync_time: Timestamp | None = None
    """When the next sync starts, in `Interval` mode."""
    bytes_transferred: Annotated[int, Field(ge=0)] | None = None
    """Bytes mirrored since the link was created."""
    transfers: TransferCounts | None = None
    """Transfers by outcome."""
    circuit_breaker: CircuitBreakerStatus | None = None
    """The circuit breaker (B8)."""


class MirrorLink(Resource):
    """A hub-edge (or edge-edge) link that mirrors datasets from a source DataSpaceNode to a
    destination, under the TransferPolicies it names (B1, B7), with a schedule, a bandwidth
    cap and a circuit breaker (B8)."""

    crd: ClassVar[CrdInfo] = CrdInfo(
        kind=MIRRORLINK_KIND,
        plural=MIRRORLINK_PLURAL,
        short_names=MIRRORLINK_SHORT_NAMES,
        printer_columns=(
            PrinterColumn("Source", ".spec.source.name", "string", "Source node."),
            PrinterColumn("Destination", ".spec.destination.name", "string", "Destination."),
            PrinterColumn("State", ".status.state", "string", "Link state."),
            PrinterColumn(
                "Breaker", ".status.circuitBreaker.state", "string", "Circuit breaker state."
            ),
            PrinterColumn(
                "Reason",
                '.status.conditions[?(@.type=="CircuitBreakerTripped")].reason',
                "string",
                "Why the breaker is open (DeniedBurst, InvalidSignatures, VolumeSpike, "
                "ManualTrip), or BreakerClosed / Probing.",
            ),
            PrinterColumn("Last Sync", ".status.lastSyncTime", "date", "Time since last sync."),
            PrinterColumn(
                "Bytes", ".status.bytesTransferred", "integer", "Bytes mirrored.", priority=1
            ),
            AGE_COLUMN,
        ),
    )
    spec_model: ClassVar[type[SpecModel]] = MirrorLinkSpec
    status_model: ClassVar[type[StatusModel]] = MirrorLinkStatus

    kind: Literal["MirrorLink"] = "MirrorLink"
    spec: MirrorLinkSpec
    """Desired state of the link."""
    status: MirrorLinkStatus | None = None
    """Observed state of the link, written by the operator."""
