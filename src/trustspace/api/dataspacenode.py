"""DataSpaceNode: one node of the data space, the hub in CN or a mirror node in ASEAN (B1)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from trustspace.api.common import (
    DnsLabel,
    Duration,
    HttpsUrl,
    KubeconfigSecretRef,
    Quantity,
    ResourceName,
    ResourceRequirements,
    ShortText,
    Sm3Hex,
    Timestamp,
    duration_between,
    object_default,
    parse_duration,
    quantity_between,
)
from trustspace.api.conditions import Conditions
from trustspace.api.constants import (
    DATASPACENODE_KIND,
    DATASPACENODE_PLURAL,
    DATASPACENODE_SHORT_NAMES,
    HUB_JURISDICTION,
    Jurisdiction,
    NodePhase,
    Role,
)
from trustspace.api.resource import AGE_COLUMN, CrdInfo, PrinterColumn, Resource
from trustspace.api.rules import FieldReason, ListType, Rule, SpecModel, StatusModel, immutable

# --- spec ---------------------------------------------------------------------------------


class PlacementMode(StrEnum):
    LOCAL = "Local"
    REMOTE = "Remote"


class Placement(SpecModel):
    """Where the node's agent runs: in this cluster, or in a remote edge cluster (B1)."""

    mode: PlacementMode = PlacementMode.LOCAL
    """`Local` runs the node's agent in this cluster. `Remote` runs it in an edge cluster
    reached with the kubeconfig named by `kubeconfigSecretRef`."""
    kubeconfig_secret_ref: KubeconfigSecretRef | None = None
    """Secret in this DataSpaceNode's namespace holding a kubeconfig for the remote edge
    cluster. Required when `mode` is `Remote`; not allowed when `mode` is `Local`."""
    namespace: DnsLabel | None = None
    """Namespace in the target cluster for the agent's workloads, created when missing.
    Defaults to this DataSpaceNode's namespace."""

    __rules__ = (
        Rule(
            cel="self.mode != 'Remote' || has(self.kubeconfigSecretRef)",
            message="Remote placement needs kubeconfigSecretRef, the Secret holding the edge "
            "cluster's kubeconfig",
            check=lambda p: p.mode != PlacementMode.REMOTE or p.kubeconfig_secret_ref is not None,
            field_path=".kubeconfigSecretRef",
            reason=FieldReason.REQUIRED,
        ),
        Rule(
            cel="self.mode != 'Local' || !has(self.kubeconfigSecretRef)",
            message="kubeconfigSecretRef is only used with Remote placement",
            check=lambda p: p.mode != PlacementMode.LOCAL or p.kubeconfig_secret_ref is None,
            field_path=".kubeconfigSecretRef",
            reason=FieldReason.FORBIDDEN,
        ),
    )


class GatewayCapability(SpecModel):
    """Security gateway (B2): the one door data uses to leave or enter the node, SM2-signed
    and SM4-encrypted end to end (B3)."""

    enabled: bool = True
    """Run the gateway. A node without it can neither send nor receive transfers."""
    port: Annotated[int, Field(ge=1024, le=65535)] = 8443
    """Port the gateway listens on inside its cluster."""
    callers: Annotated[list[DnsLabel], ListType("set"), Field(max_length=32)] | None = None
    """Apps in other Pods that may call the agent's local API (transfers, inbox, link
    resets). The operator issues each a bearer token in the Secret `<node>-caller-<name>`
    (key `token`) for the app to mount, and gives the agent only the tokens' SM3 digests.
    Unset: only the agent's own Pod (loopback) is served."""


class EvidenceCapability(SpecModel):
    """Tamper-evident evidence store (B2, 存证): transfers, approvals (B5) and audit records
    (B4) are filed here and can be verified across borders."""

    enabled: bool = True
    """Run the evidence store."""
    retention: Annotated[Duration, duration_between("720h", "87600h")] = "26280h"
    """How long evidence is kept before it may be pruned, e.g. `26280h` (three years)."""


class SandboxCapability(SpecModel):
    """Privacy-computing sandbox (B2): review-channel flows are computed here instead of
    being copied out in clear (B7)."""

    enabled: bool = True
    """Run the sandbox. Review-channel transfers to or from this node need it."""
    max_concurrent_jobs: Annotated[int, Field(ge=1, le=64)] = 4
    """Sandbox jobs that may run at once; more wait in a queue."""


class Capabilities(SpecModel):
    """The three base capabilities every node offers (B2)."""

    gateway: GatewayCapability = object_default(GatewayCapability)
    """Security gateway settings."""
    evidence: EvidenceCapability = object_default(EvidenceCapability)
    """Evidence store settings."""
    sandbox: SandboxCapability = object_default(SandboxCapability)
    """Privacy-computing sandbox settings."""

    __rules__ = (
        Rule(
            cel="!self.gateway.enabled || self.evidence.enabled",
            message="a node with a gateway needs the evidence store: every cross-border "
            "transfer is filed as evidence (B4)",
            check=lambda c: not c.gateway.enabled or c.evidence.enabled,
            field_path=".evidence.enabled",
        ),
    )


class PullPolicy(StrEnum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class AgentSpec(SpecModel):
    """The edge agent the operator runs for this node: gateway, audit shipper, key holder."""

    image: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    """Container image of the agent. Defaults to the agent image released with the
    operator."""
    image_pull_policy: PullPolicy | None = None
    """When to pull the image: `Always`, `IfNotPresent` or `Never`."""
    replicas: Annotated[int, Field(ge=1, le=5)] = 1
    """Number of agent replicas; more than one shares the gateway load."""
    resources: ResourceRequirements | None = None
    """CPU and memory for the agent container."""
    audit_buffer_size: Annotated[Quantity, quantity_between("64Mi", "1Ti")] = "1Gi"
    """Size of the volume where the agent buffers audit records while the hub cannot be
    reached (B4), e.g. `1Gi`."""
    storage_class_name: ResourceName | None = None
    """StorageClass of the audit buffer volume; the cluster's default when empty."""
    heartbeat_interval: Annotated[Duration, duration_between("5s", "10m")] = "30s"
    """How often the agent reports to the hub, e.g. `30s`; after three missed heartbeats
    the node is marked not ready."""


class KeyAlgorithm(StrEnum):
    SM2 = "SM2"


class RotationPolicy(StrEnum):
    AUTOMATIC = "Automatic"
    MANUAL = "Manual"


def _grace_shorter(k: KeyRotation) -> bool:
    if k.policy == RotationPolicy.MANUAL:
        return True
    return parse_duration(k.grace_period) < parse_duration(k.rotate_every)


class KeyRotation(SpecModel):
    """How the node's SM2 signing key is rotated (B3). After a rotation the previous key
    still verifies signatures for `gracePeriod`, so transfers in flight do not fail."""

    algorithm: KeyAlgorithm = KeyAlgorithm.SM2
    """Signature algorithm of the node key. Only `SM2` (with SM3 digests) is allowed."""
    policy: RotationPolicy = RotationPolicy.AUTOMATIC
    """`Automatic` rotates every `rotateEvery`. `Manual` rotates only when asked, with the
    annotation `trustspace.io/rotate-key` on this object."""
    rotate_every: Annotated[Duration, duration_between("1h", "8760h")] = "2160h"
    """How long a key signs before the next one replaces it, e.g. `2160h` (90 days).
    Ignored when `policy` is `Manual`."""
    grace_period: Annotated[Duration, duration_between("0s", "2160h")] = "168h"
    """How long a replaced key still verifies signatures, e.g. `168h`. With `Automatic`
    rotation it must be shorter than `rotateEvery`."""

    __rules__ = (
        Rule(
            cel="self.policy == 'Manual'"
            " || duration(self.gracePeriod) < duration(self.rotateEvery)",
            message="gracePeriod must be shorter than rotateEvery, or retired keys would pile up",
            check=_grace_shorter,
            field_path=".gracePeriod",
        ),
    )


def _hub_in_cn(s: DataSpaceNodeSpec) -> bool:
    return s.role != Role.HUB or s.jurisdiction == HUB_JURISDICTION


def _edge_outside_cn(s: DataSpaceNodeSpec) -> bool:
    return s.role != Role.EDGE or s.jurisdiction != HUB_JURISDICTION


def _hub_local(s: DataSpaceNodeSpec) -> bool:
    return s.role != Role.HUB or s.placement.mode == PlacementMode.LOCAL


def _hub_full(s: DataSpaceNodeSpec) -> bool:
    c = s.capabilities
    return s.role != Role.HUB or (c.gateway.enabled and c.evidence.enabled and c.sandbox.enabled)


class DataSpaceNodeSpec(SpecModel):
    """Desired state of a DataSpaceNode."""

    role: Annotated[Role, immutable("role")]
    """`hub` for the regional hub in Guangxi, `edge` for a mirror node in an ASEAN state
    (B1). Immutable."""
    jurisdiction: Annotated[Jurisdiction, immutable("jurisdiction")]
    """ISO 3166-1 alpha-2 code of the state whose law governs the node's data: `CN` for the
    hub; `BN`, `KH`, `ID`, `LA`, `MY`, `MM`, `PH`, `SG`, `TH` or `VN` for an edge. Immutable."""
    display_name: ShortText | None = None
    """Human-friendly name, e.g. `Hanoi mirror node`."""
    endpoint: HttpsUrl
    """HTTPS URL where peers reach this node's gateway, e.g. `https://gw.vn-hanoi.example:8443`."""
    placement: Placement = object_default(Placement)
    """Where the node's agent runs: in this cluster (`Local`), or in a remote edge cluster
    (`Remote`) reached through a kubeconfig Secret, and in which namespace there."""
    capabilities: Capabilities = object_default(Capabilities)
    """The three base capabilities of every node (B2): security gateway, tamper-evident
    evidence store, privacy-computing sandbox. A hub runs all three."""
    agent: AgentSpec = object_default(AgentSpec)
    """The agent the operator deploys for this node: image, replicas, resources, audit
    buffer and heartbeat."""
    key_rotation: KeyRotation = object_default(KeyRotation)
    """How the node's SM2 signing key is rotated (B3): automatically every `rotateEvery`, or
    only on request (`policy: Manual`). After a rotation the previous key still verifies
    signatures for `gracePeriod`, so transfers in flight do not fail."""

    __rules__ = (
        Rule(
            cel=f"self.role != 'hub' || self.jurisdiction == '{HUB_JURISDICTION}'",
            message=f"a hub must be in {HUB_JURISDICTION}: the data space has one regional hub, "
            "in Guangxi (B1)",
            check=_hub_in_cn,
            field_path=".jurisdiction",
        ),
        Rule(
            cel=f"self.role != 'edge' || self.jurisdiction != '{HUB_JURISDICTION}'",
            message=f"an edge node must be in an ASEAN state, not in the hub's jurisdiction "
            f"{HUB_JURISDICTION} (B1)",
            check=_edge_outside_cn,
            field_path=".jurisdiction",
        ),
        Rule(
            cel="self.role != 'hub' || self.placement.mode == 'Local'",
            message="a hub runs in this cluster: placement.mode must be Local",
            check=_hub_local,
            field_path=".placement.mode",
        ),
        Rule(
            cel=(
                "self.role != 'hub' || (self.capabilities.gateway.enabled"
                " && self.capabilities.evidence.enabled && self.capabilities.sandbox.enabled)"
            ),
            message="a hub runs all three base capabilities (B2): gateway, evidence and sandbox",
            check=_hub_full,
            field_path=".capabilities",
        ),
    )


# --- status -------------------------------------------------------------------------------

PublicKeyPem = Annotated[
    str,
    Field(
        min_length=100,
        max_length=1024,
        pattern=r"^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----\n?$",
    ),
]
KeyId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
#: Retired keys kept visible in status; older ones have stopped verifying anyway.
MAX_PREVIOUS_KEYS = 8


class ActiveKey(StatusModel):
    """The SM2 key the node signs with now."""

    key_id: KeyId
    """Identifier of the key, quoted in every signature the node makes."""
    fingerprint: Sm3Hex
    """SM3 digest of the DER-encoded public key, 64 hex digits."""
    public_key: PublicKeyPem | None = None
    """The SM2 public key (SubjectPublicKeyInfo PEM). The private key never leaves the
    node's key Secret in the cluster where the node runs."""
    algorithm: KeyAlgorithm = KeyAlgorithm.SM2
    """Signature algorithm of the key."""
    not_before: Timestamp
    """When the key started signing."""
    rotated_at: Timestamp | None = None
    """When this key replaced the previous one; empty for the node's first key."""
    next_rotation_at: Timestamp | None = None
    """When the operator will rotate next; empty with `Manual` rotation."""


class PreviousKey(StatusModel):
    """A replaced SM2 key that still verifies signatures until `retireAt`."""

    key_id: KeyId
    """Identifier of the key."""
    fingerprint: Sm3Hex | None = None
    """SM3 digest of the DER-encoded public key."""
    public_key: PublicKeyPem | None = None
    """The SM2 public key (SubjectPublicKeyInfo PEM), still in the trust bundle."""
    retire_at: Timestamp
    """When the key stops verifying: its rotation time plus the grace period."""


class NextKey(StatusModel):
    """A key staged for the next rotation: published to verifiers before it signs (B3)."""

    key_id: KeyId
    """Identifier of the staged key."""
    fingerprint: Sm3Hex
    """SM3 digest of the DER-encoded public key."""
    public_key: PublicKeyPem
    """The staged SM2 public key (SubjectPublicKeyInfo PEM)."""
    staged_at: Timestamp
    """When the key was generated and stored in the node's key Secret."""


class AuditStatus(StatusModel):
    """Progress of the node's audit stream to the hub (B4)."""

    last_sequence: Annotated[int, Field(ge=0)] | None = None
    """Sequence number of the newest audit record the hub has received from this node."""
    last_event_time: Timestamp | None = None
    """Time of the newest audit record the hub has received."""
    lag: Duration | None = None
    """How far the hub's copy trails the agent's newest record, e.g. `2s`."""
    buffered_records: Annotated[int, Field(ge=0)] | None = None
    """Records waiting in the agent's buffer for the hub to acknowledge them."""


class PolicyBundleStatus(StatusModel):
    """The compiled transfer-policy bundle a node enforces."""

    version: Annotated[int, Field(ge=1)]
    """Bundle version; higher is newer."""
    hash: Sm3Hex
    """SM3 digest of the bundle, to compare with the hub's copy."""
    applied_at: Timestamp | None = None
    """When the node started enforcing the bundle."""


class AgentStatus(StatusModel):
    """The agent's workload as last observed."""

    replicas: Annotated[int, Field(ge=0)] | None = None
    """Agent replicas that exist."""
    ready_replicas: Annotated[int, Field(ge=0)] | None = None
    """Agent replicas that are ready."""
    version: Annotated[str, Field(max_length=64)] | None = None
    """Version the agent reports in its heartbeat."""


class DataSpaceNodeStatus(StatusModel):
    """Observed state of a DataSpaceNode, written by the operator."""

    phase: NodePhase | None = None
    """One-word summary of the conditions: `Pending`, `Provisioning`, `Ready`, `Degraded`
    or `Failed`."""
    conditions: Conditions = Field(default_factory=list)
    """Current state: `Ready`, `KeyReady`, `AgentReady`, `PolicySynced`, `AuditStreaming`,
    `Degraded`, `AuditBackpressure`."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The `metadata.generation` this status was computed from."""
    active_key: ActiveKey | None = None
    """The SM2 key the node signs with now."""
    next_key: NextKey | None = None
    """The key the next rotation will activate, present only during a rotation."""
    previous_keys: Annotated[
        list[PreviousKey], ListType("map", ("key_id",)), Field(max_length=MAX_PREVIOUS_KEYS)
    ] = Field(default_factory=list)
    """Replaced keys that still verify, newest first (at most 8)."""
    last_heartbeat_time: Timestamp | None = None
    """When the agent last reported to the hub."""
    audit: AuditStatus | None = None
    """Progress of the audit stream to the hub (B4)."""
    policy_bundle: PolicyBundleStatus | None = None
    """The transfer-policy bundle in force on the node."""
    agent: AgentStatus | None = None
    """The agent's workload."""


# --- the resource -------------------------------------------------------------------------


class DataSpaceNode(Resource):
    """A node of the cross-border trusted data space: the hub in Guangxi (role hub,
    jurisdiction CN) or a mirror node in an ASEAN state (role edge) (B1). The operator runs
    the node's agent (gateway, evidence store, sandbox) here or in a remote edge cluster,
    rotates its SM2 key and streams its audit records to the hub."""

    crd: ClassVar[CrdInfo] = CrdInfo(
        kind=DATASPACENODE_KIND,
        plural=DATASPACENODE_PLURAL,
        short_names=DATASPACENODE_SHORT_NAMES,
        printer_columns=(
            PrinterColumn("Role", ".spec.role", "string", "hub or edge."),
            PrinterColumn("Jurisdiction", ".spec.jurisdiction", "string", "ISO 3166-1 code."),
            PrinterColumn("Phase", ".status.phase", "string", "Summary of the conditions."),
            PrinterColumn(
                "Ready",
                '.status.conditions[?(@.type=="Ready")].status',
                "string",
                "Whether the node is ready.",
            ),
            PrinterColumn("Key", ".status.activeKey.keyId", "string", "Active SM2 key."),
            PrinterColumn(
                "Key Age", ".status.activeKey.notBefore", "date", "Age of the active SM2 key."
            ),
            PrinterColumn(
                "Last Audit",
                ".status.audit.lastEventTime",
                "date",
                "Time since the newest audit record reached the hub.",
            ),
            PrinterColumn("Endpoint", ".spec.endpoint", "string", "Gateway URL.", priority=1),
            PrinterColumn(
                "Placement", ".spec.placement.mode", "string", "Local or Remote.", priority=1
            ),
            AGE_COLUMN,
        ),
    )
    spec_model: ClassVar[type[SpecModel]] = DataSpaceNodeSpec
    status_model: ClassVar[type[StatusModel]] = DataSpaceNodeStatus

    kind: Literal["DataSpaceNode"] = "DataSpaceNode"
    spec: DataSpaceNodeSpec
    """Desired state of the node."""
    status: DataSpaceNodeStatus | None = None
    """Observed state of the node, written by the operator."""
