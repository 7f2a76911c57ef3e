"""Names of the trustspace.io API: group, kinds, jurisdictions, phases, condition types, reasons.

The operator and the edge agent import these instead of spelling strings, so a rename is one
edit here (and a regenerated CRD) rather than a hunt through both programs.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

GROUP: Final = "trustspace.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
#: `kubectl get trustspace` lists every kind of this API.
CATEGORY: Final = "trustspace"

DATASPACENODE_KIND: Final = "DataSpaceNode"
TRANSFERPOLICY_KIND: Final = "TransferPolicy"
MIRRORLINK_KIND: Final = "MirrorLink"

DATASPACENODE_PLURAL: Final = "dataspacenodes"
TRANSFERPOLICY_PLURAL: Final = "transferpolicies"
MIRRORLINK_PLURAL: Final = "mirrorlinks"

DATASPACENODE_SHORT_NAMES: Final = ("dsn",)
TRANSFERPOLICY_SHORT_NAMES: Final = ("tp",)
MIRRORLINK_SHORT_NAMES: Final = ("ml",)

#: Annotation that asks the operator for an immediate SM2 key rotation (its value, any
#: string, is echoed into the KeyReady condition message); the operator removes it once done.
ROTATE_KEY_ANNOTATION: Final = f"{GROUP}/rotate-key"


class Role(StrEnum):
    """Place of a node in the "1+N" architecture (B1)."""

    HUB = "hub"
    EDGE = "edge"


class Jurisdiction(StrEnum):
    """ISO 3166-1 alpha-2 codes of the states in the data space: China and the ten ASEAN states."""

    CN = "CN"
    BN = "BN"
    KH = "KH"
    ID = "ID"
    LA = "LA"
    MY = "MY"
    MM = "MM"
    PH = "PH"
    SG = "SG"
    TH = "TH"
    VN = "VN"


#: B1: the single regional hub is in Guangxi, China.
HUB_JURISDICTION: Final = Jurisdiction.CN

JURISDICTION_NAMES: Final[dict[Jurisdiction, str]] = {
    Jurisdiction.CN: "China",
    Jurisdiction.BN: "Brunei Darussalam",
    Jurisdiction.KH: "Cambodia",
    Jurisdiction.ID: "Indonesia",
    Jurisdiction.LA: "Lao PDR",
    Jurisdiction.MY: "Malaysia",
    Jurisdiction.MM: "Myanmar",
    Jurisdiction.PH: "Philippines",
    Jurisdiction.SG: "Singapore",
    Jurisdiction.TH: "Thailand",
    Jurisdiction.VN: "Viet Nam",
}


class Classification(StrEnum):
    """Shared data classification levels (R1), least to most sensitive."""

    PUBLIC = "public"
    INTERNAL = "internal"
    IMPORTANT = "important"
    CORE = "core"


class DataCategory(StrEnum):
    """Kinds of data a rule can name; the scenarios (S1, S2) and R2's privacy laws need these."""

    PERSONAL = "personal"
    HEALTH = "health"
    FINANCIAL = "financial"
    GENETIC = "genetic"
    GEOSPATIAL = "geospatial"
    INDUSTRIAL = "industrial"
    TELEMETRY = "telemetry"
    TRADE = "trade"
    CUSTOMS = "customs"
    LOGISTICS = "logistics"
    PAYMENTS = "payments"
    TOURISM = "tourism"
    PUBLIC_DATA = "public-data"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


# --- DataSpaceNode ------------------------------------------------------------------------


class NodePhase(StrEnum):
    """One-word summary of a DataSpaceNode, derived from its conditions."""

    PENDING = "Pending"
    PROVISIONING = "Provisioning"
    READY = "Ready"
    DEGRADED = "Degraded"
    FAILED = "Failed"


class NodeConditionType(StrEnum):
    READY = "Ready"
    KEY_READY = "KeyReady"
    AGENT_READY = "AgentReady"
    POLICY_SYNCED = "PolicySynced"
    AUDIT_STREAMING = "AuditStreaming"
    DEGRADED = "Degraded"
    AUDIT_BACKPRESSURE = "AuditBackpressure"


class NodeReason(StrEnum):
    RECONCILED = "Reconciled"
    PROVISIONING = "Provisioning"
    NOT_READY = "NotReady"
    INVALID_SPEC = "InvalidSpec"
    KUBECONFIG_SECRET_MISSING = "KubeconfigSecretMissing"  # noqa: S105 (a reason, no secret)
    REMOTE_CLUSTER_UNREACHABLE = "RemoteClusterUnreachable"
    KEY_ISSUED = "KeyIssued"
    KEY_ROTATED = "KeyRotated"
    KEY_ROTATION_DUE = "KeyRotationDue"
    KEY_ROTATION_FAILED = "KeyRotationFailed"
    KEY_MISSING = "KeyMissing"
    AGENT_AVAILABLE = "AgentAvailable"
    AGENT_UNAVAILABLE = "AgentUnavailable"
    HEARTBEAT_MISSED = "HeartbeatMissed"
    BUNDLE_APPLIED = "BundleApplied"
    BUNDLE_STALE = "BundleStale"
    POLICY_SYNC_FAILED = "PolicySyncFailed"
    AUDIT_STREAMING = "AuditStreaming"
    AUDIT_STALLED = "AuditStalled"
    AUDIT_GAP = "AuditGap"
    BUFFER_FILLING = "BufferFilling"
    BUFFER_OK = "BufferOK"


# --- TransferPolicy -----------------------------------------------------------------------


class PolicyConditionType(StrEnum):
    ACCEPTED = "Accepted"
    COMPILED = "Compiled"


class PolicyReason(StrEnum):
    ACCEPTED = "Accepted"
    INVALID_SPEC = "InvalidSpec"
    NO_MATCHING_NODES = "NoMatchingNodes"
    COMPILED = "Compiled"
    COMPILE_FAILED = "CompileFailed"
    CONFLICTS_FOUND = "ConflictsFound"


# --- MirrorLink ---------------------------------------------------------------------------


class LinkState(StrEnum):
    PENDING = "Pending"
    ESTABLISHED = "Established"
    DEGRADED = "Degraded"
    TRIPPED = "Tripped"


class LinkConditionType(StrEnum):
    READY = "Ready"
    NODES_READY = "NodesReady"
    POLICIES_RESOLVED = "PoliciesResolved"
    CIRCUIT_BREAKER_TRIPPED = "CircuitBreakerTripped"
    SYNCED = "Synced"


class LinkReason(StrEnum):
    ESTABLISHED = "Established"
    NODE_NOT_FOUND = "NodeNotFound"
    NODE_NOT_READY = "NodeNotReady"
    POLICY_NOT_FOUND = "PolicyNotFound"
    POLICY_NOT_COMPILED = "PolicyNotCompiled"
    POLICIES_RESOLVED = "PoliciesResolved"
    BREAKER_CLOSED = "BreakerClosed"
    DENIED_BURST = "DeniedBurst"
    INVALID_SIGNATURES = "InvalidSignatures"
    VOLUME_SPIKE = "VolumeSpike"
    MANUAL_TRIP = "ManualTrip"
    COOLING_DOWN = "CoolingDown"
    SYNCED = "Synced"
    SYNC_FAILED = "SyncFailed"
    SUSPENDED = "Suspended"


class BreakerState(StrEnum):
    """B8 circuit breaker: Closed lets data flow, Open cuts it, HalfOpen probes after cool-down."""

    CLOSED = "Closed"
    OPEN = "Open"
    HALF_OPEN = "HalfOpen"
