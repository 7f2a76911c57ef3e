"""TransferPolicy: which flows between nodes are allowed, through which channel (B5-B8, R1-R3)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints

from trustspace.api.common import (
    DnsLabel,
    Duration,
    LabelSelector,
    LongText,
    Quantity,
    ResourceName,
    SecretKeySelector,
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
    TRANSFERPOLICY_KIND,
    TRANSFERPOLICY_PLURAL,
    TRANSFERPOLICY_SHORT_NAMES,
    Classification,
    DataCategory,
    Jurisdiction,
)
from trustspace.api.resource import AGE_COLUMN, CrdInfo, PrinterColumn, Resource
from trustspace.api.rules import FieldReason, ListType, Rule, SpecModel, StatusModel

# --- node selection -----------------------------------------------------------------------


def _selects_something(s: NodeSelector) -> bool:
    return s.names is not None or s.selector is not None or s.jurisdictions is not None


class NodeSelector(SpecModel):
    """Which DataSpaceNodes (in this namespace) one side of a flow covers. The stated
    criteria must all match; `selector: {}` selects every node."""

    names: Annotated[list[ResourceName], ListType("set"), Field(max_length=64)] | None = None
    """Names of DataSpaceNodes."""
    selector: LabelSelector | None = None
    """Label selector over DataSpaceNodes."""
    jurisdictions: (
        Annotated[list[Jurisdiction], ListType("set"), Field(min_length=1, max_length=11)] | None
    ) = None
    """Jurisdictions of the nodes, e.g. `[VN]`."""

    __rules__ = (
        Rule(
            cel="has(self.names) || has(self.selector) || has(self.jurisdictions)",
            message="name at least one of names, selector or jurisdictions (selector: {} "
            "selects every node)",
            check=_selects_something,
            reason=FieldReason.REQUIRED,
        ),
    )


# --- rules --------------------------------------------------------------------------------


class Action(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    REVIEW = "review"


class Channel(StrEnum):
    AUTO = "auto"
    REVIEW = "review"


class ApproverKind(StrEnum):
    REGULATOR = "Regulator"
    ASSESSOR = "Assessor"
    DATA_PROVIDER = "DataProvider"
    DATA_RECIPIENT = "DataRecipient"
    PLATFORM_OPERATOR = "PlatformOperator"


class Approver(SpecModel):
    """A party whose signed approval a review transfer can need (B5)."""

    name: DnsLabel
    """Stable identifier of the party, quoted in its signed approval records, e.g.
    `vn-ministry-of-public-security`."""
    display_name: ShortText | None = None
    """Human-friendly name, e.g. `Ministry of Public Security (Viet Nam)`."""
    kind: ApproverKind
    """What the party is: `Regulator`, `Assessor`, `DataProvider`, `DataRecipient` or
    `PlatformOperator`."""
    jurisdiction: Jurisdiction | None = None
    """State the party belongs to, when it is a state body."""


class Approval(SpecModel):
    """Multi-party authorisation (B5): at least `minApprovals` of the named approvers must
    sign before the data moves; the signed approvals are filed as evidence."""

    approvers: Annotated[
        list[Approver], ListType("map", ("name",)), Field(min_length=1, max_length=16)
    ]
    """Parties that may approve."""
    min_approvals: Annotated[int, Field(ge=1, le=16)] = 1
    """How many distinct approvers must approve (N of M)."""
    timeout: Annotated[Duration, duration_between("1h", "2160h")] = "72h"
    """A request without enough approvals after this long is denied, e.g. `72h`."""

    __rules__ = (
        Rule(
            cel="self.minApprovals <= size(self.approvers)",
            message="minApprovals cannot exceed the number of approvers",
            check=lambda a: a.min_approvals <= len(a.approvers),
            field_path=".minApprovals",
        ),
    )


class DesensitiseMethod(StrEnum):
    MASK = "mask"
    PSEUDONYMISE = "pseudonymise"
    GENERALISE = "generalise"
    DROP = "drop"


class MaskOptions(SpecModel):
    """Masking keeps the ends of a value and hides the middle: `138****5678`."""

    keep_first: Annotated[int, Field(ge=0, le=64)] = 0
    """Leading characters left visible."""
    keep_last: Annotated[int, Field(ge=0, le=64)] = 4
    """Trailing characters left visible."""
    mask_character: Annotated[str, StringConstraints(min_length=1, max_length=1)] = "*"
    """Character that replaces hidden ones."""


class PseudonymiseOptions(SpecModel):
    """Pseudonymisation replaces a value with its SM3-HMAC under a secret key: the same
    input always gives the same token, so records still join, but the value cannot be read."""

    key_secret_ref: SecretKeySelector
    """Secret key of the SM3-HMAC. Keep it on the sending side only."""


class GeneraliseOptions(SpecModel):
    """Generalisation coarsens a value: dates lose days then months, numbers are rounded,
    coordinates lose decimals."""

    level: Annotated[int, Field(ge=1, le=5)] = 1
    """Coarsening steps, from 1 (slight) to 5 (strong)."""


FieldPath = Annotated[
    str,
    StringConstraints(
        min_length=1,
        max_length=256,
        pattern=r"^[A-Za-z_][A-Za-z0-9_-]*(\[\*\])?(\.[A-Za-z_][A-Za-z0-9_-]*(\[\*\])?)*$",
    ),
]


def _options_match(method: DesensitiseMethod, option: str) -> Rule:
    return Rule(
        cel=f"!has(self.{option}) || self.method == '{method}'",
        message=f"{option} options only apply to method {method}",
        check=lambda d: getattr(d, option) is None or d.method == method,
        field_path=f".{option}",
        reason=FieldReason.FORBIDDEN,
    )


class Desensitisation(SpecModel):
    """How one field of each record is desensitised before it leaves the node (B6)."""

    field: FieldPath
    """Dotted path of the field in a record, `[*]` for every list item, e.g.
    `patient.idNumber` or `items[*].owner`."""
    method: DesensitiseMethod
    """`mask` hides part of the value, `pseudonymise` replaces it with an SM3-HMAC token,
    `generalise` coarsens it, `drop` removes the field."""
    mask: MaskOptions | None = None
    """Options of `mask`."""
    pseudonymise: PseudonymiseOptions | None = None
    """Options of `pseudonymise`; required by that method."""
    generalise: GeneraliseOptions | None = None
    """Options of `generalise`."""

    __rules__ = (
        Rule(
            cel="self.method != 'pseudonymise' || has(self.pseudonymise)",
            message="pseudonymise needs pseudonymise.keySecretRef, the SM3-HMAC key",
            check=lambda d: (
                d.method != DesensitiseMethod.PSEUDONYMISE or d.pseudonymise is not None
            ),
            field_path=".pseudonymise",
            reason=FieldReason.REQUIRED,
        ),
        _options_match(DesensitiseMethod.MASK, "mask"),
        _options_match(DesensitiseMethod.PSEUDONYMISE, "pseudonymise"),
        _options_match(DesensitiseMethod.GENERALISE, "generalise"),
    )


class Encryption(StrEnum):
    SM4_GCM = "SM4-GCM"
    SM4_CBC = "SM4-CBC"


class Signature(StrEnum):
    SM2 = "SM2"


class Protections(SpecModel):
    """What protects the data on its way (B3, B6). Encryption and signatures are always on;
    these fields choose how, and which fields are desensitised first."""

    encryption: Encryption = Encryption.SM4_GCM
    """SM4 mode for the payload: `SM4-GCM`, or `SM4-CBC` with an SM3-HMAC for peers without
    GCM."""
    signature: Signature = Signature.SM2
    """Signature over each transfer's manifest: `SM2` with SM3 digests."""
    desensitisation: (
        Annotated[list[Desensitisation], ListType("map", ("field",)), Field(max_length=64)] | None
    ) = None
    """Fields desensitised before the data leaves the source node (B6)."""


class Limits(SpecModel):
    """Volume limits of a rule; transfers over a limit are denied."""

    max_payload_size: Annotated[Quantity, quantity_between("1Ki", "100Gi")] | None = None
    """Largest payload of a single transfer, e.g. `64Mi`."""
    max_transfers_per_minute: Annotated[int, Field(ge=1, le=100000)] | None = None
    """Transfers per minute from one source node to one destination node."""


Certification = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
]


def _review_has_approval(r: TransferRule) -> bool:
    return r.action != Action.REVIEW or r.approval is not None


def _approval_only_for_review(r: TransferRule) -> bool:
    return r.action == Action.REVIEW or r.approval is None


def _review_channel(r: TransferRule) -> bool:
    return r.action != Action.REVIEW or r.channel in (None, Channel.REVIEW)


def _deny_has_no_route(r: TransferRule) -> bool:
    return r.action != Action.DENY or (
        r.channel is None and r.protections is None and r.limits is None
    )


def _core_needs_approval(r: TransferRule) -> bool:
    return Classification.CORE not in r.classifications or r.action != Action.ALLOW


class TransferRule(SpecModel):
    """What happens to data of the given classifications and categories."""

    name: DnsLabel
    """Name of the rule, unique in the policy; audit records and conflicts quote it."""
    description: LongText | None = None
    """Why the rule exists, e.g. the law it encodes."""
    classifications: Annotated[
        list[Classification], ListType("set"), Field(min_length=1, max_length=4)
    ]
    """Classification levels the rule covers (R1): `public`, `internal`, `important`,
    `core`."""
    categories: (
        Annotated[list[DataCategory], ListType("set"), Field(min_length=1, max_length=16)] | None
    ) = None
    """Data categories the rule covers, e.g. `[health, personal]`; every category when
    empty."""
    action: Action
    """`allow` lets the data cross; `deny` stops it; `review` holds it for the approvers in
    `approval` and runs it through the sandbox (B5, B7)."""
    channel: Channel | None = None
    """Route of allowed data (B7): `auto` crosses in seconds through the gateway, `review`
    goes through the privacy-computing sandbox. Defaults to `auto` for `allow` and `review`
    for `review`; not used with `deny`."""
    approval: Approval | None = None
    """Who must approve; required for `review`, not allowed otherwise (B5)."""
    protections: Protections | None = None
    """Encryption, signature and desensitisation of the data; SM4-GCM and SM2 when empty.
    Not used with `deny`."""
    limits: Limits | None = None
    """Payload size and rate limits. Not used with `deny`."""
    required_certifications: (
        Annotated[list[Certification], ListType("set"), Field(min_length=1, max_length=8)] | None
    ) = None
    """Certifications the recipient must hold (R2), e.g. `sg-dptm` for Singapore's Data
    Protection Trustmark; the gateway refuses transfers to a recipient without them."""

    __rules__ = (
        Rule(
            cel="self.action != 'review' || has(self.approval)",
            message="a review rule must name its approvers (B5): set approval.approvers",
            check=_review_has_approval,
            field_path=".approval",
            reason=FieldReason.REQUIRED,
        ),
        Rule(
            cel="self.action == 'review' || !has(self.approval)",
            message="approval is only used by review rules",
            check=_approval_only_for_review,
            field_path=".approval",
            reason=FieldReason.FORBIDDEN,
        ),
        Rule(
            cel="self.action != 'review' || !has(self.channel) || self.channel == 'review'",
            message="a review rule takes the review channel: sandbox plus manual approval (B7)",
            check=_review_channel,
            field_path=".channel",
        ),
        Rule(
            cel="self.action != 'deny' || (!has(self.channel) && !has(self.protections)"
            " && !has(self.limits))",
            message="a deny rule moves no data: channel, protections and limits are not used",
            check=_deny_has_no_route,
            field_path=".action",
        ),
        Rule(
            cel="!('core' in self.classifications) || self.action != 'allow'",
            message="core data never crosses without multi-party approval (R1, B5): a rule "
            "covering core must be deny or review",
            check=_core_needs_approval,
            field_path=".action",
        ),
    )

    @property
    def effective_channel(self) -> Channel | None:
        """The channel data allowed by this rule takes; None for `deny`."""
        if self.action == Action.DENY:
            return None
        if self.channel is not None:
            return self.channel
        return Channel.REVIEW if self.action == Action.REVIEW else Channel.AUTO

    @property
    def effective_protections(self) -> Protections:
        return self.protections or Protections()


# --- circuit breaker (B8) -----------------------------------------------------------------


class DeniedBurst(SpecModel):
    """Trip when many transfers are denied in a short time: someone is probing."""

    count: Annotated[int, Field(ge=1, le=10000)] = 20
    """Denied transfers that trip the breaker."""
    window: Annotated[Duration, duration_between("1s", "24h")] = "1m"
    """Sliding window the denials are counted in, e.g. `1m`."""


class InvalidSignatures(SpecModel):
    """Trip when transfers arrive with SM2 signatures that do not verify."""

    count: Annotated[int, Field(ge=1, le=10000)] = 3
    """Invalid signatures that trip the breaker."""
    window: Annotated[Duration, duration_between("1s", "24h")] = "10m"
    """Sliding window the invalid signatures are counted in, e.g. `10m`."""


def _spike_windows(v: VolumeSpike) -> bool:
    return parse_duration(v.window) < parse_duration(v.baseline_window)


class VolumeSpike(SpecModel):
    """Trip when the volume over `window` exceeds `ratioPercent` of its moving average over
    `baselineWindow`: a sudden bulk export."""

    ratio_percent: Annotated[int, Field(ge=110, le=100000)] = 500
    """Threshold as a percentage of the moving average, e.g. `500` for five times."""
    window: Annotated[Duration, duration_between("1m", "24h")] = "5m"
    """Window whose volume is compared, e.g. `5m`."""
    baseline_window: Annotated[Duration, duration_between("1h", "720h")] = "24h"
    """Window of the moving average, e.g. `24h`; longer than `window`."""

    __rules__ = (
        Rule(
            cel="duration(self.window) < duration(self.baselineWindow)",
            message="window must be shorter than baselineWindow",
            check=_spike_windows,
            field_path=".window",
        ),
    )


class ResumePolicy(StrEnum):
    AUTOMATIC = "Automatic"
    MANUAL = "Manual"


class CircuitBreaker(SpecModel):
    """Data circuit breaker (B8, 数据熔断): anomalous traffic on a link governed by this
    policy cuts the flow automatically."""

    enabled: bool = True
    """Watch the thresholds below. Disable only for tests."""
    denied_burst: DeniedBurst = object_default(DeniedBurst)
    """Burst of denied transfers."""
    invalid_signatures: InvalidSignatures = object_default(InvalidSignatures)
    """Transfers whose signatures do not verify."""
    volume_spike: VolumeSpike = object_default(VolumeSpike)
    """Volume far above its moving average."""
    cool_down: Annotated[Duration, duration_between("1m", "168h")] = "15m"
    """How long the link stays cut before it may resume, e.g. `15m`."""
    resume: ResumePolicy = ResumePolicy.AUTOMATIC
    """`Automatic` probes the link after `coolDown` and closes the breaker when traffic is
    normal; `Manual` waits for an operator to reset it."""


# --- spec ---------------------------------------------------------------------------------


class TransferPolicySpec(SpecModel):
    """Desired state of a TransferPolicy."""

    description: LongText | None = None
    """What the policy is for, e.g. the regulation it encodes."""
    priority: Annotated[int, Field(ge=0, le=1000)] = 100
    """When rules of several policies cover the same flow, the highest priority wins; among
    equal priorities the most restrictive action wins (deny, then review, then allow) and a
    conflict is reported in status."""
    sources: NodeSelector
    """Nodes the data comes from: by `names`, label `selector` or `jurisdictions`; the
    stated criteria must all match, and `selector: {}` selects every node."""
    destinations: NodeSelector
    """Nodes the data goes to, selected the same way as `sources`."""
    rules: Annotated[
        list[TransferRule], ListType("map", ("name",)), Field(min_length=1, max_length=32)
    ]
    """Rules by classification and category. A flow no rule of any policy covers is
    denied."""
    circuit_breaker: CircuitBreaker = object_default(CircuitBreaker)
    """When to cut the flow automatically (B8)."""


# --- status -------------------------------------------------------------------------------

MAX_CONFLICTS = 16


class CompiledBundle(StatusModel):
    """The policy bundle this policy was compiled into."""

    version: Annotated[int, Field(ge=1)]
    """Bundle version; higher is newer."""
    hash: Sm3Hex
    """SM3 digest of the bundle."""
    compiled_at: Timestamp | None = None
    """When the bundle was compiled."""


class Conflict(StatusModel):
    """A flow two rules decide differently at the same priority."""

    rule: DnsLabel
    """Rule of this policy."""
    policy: ResourceName
    """The other policy (may be this one)."""
    other_rule: DnsLabel
    """Rule of the other policy."""
    message: LongText
    """What overlaps and which action won."""


class TransferPolicyStatus(StatusModel):
    """Observed state of a TransferPolicy, written by the operator."""

    conditions: Conditions = Field(default_factory=list)
    """Current state: `Accepted` (the spec is valid and selects nodes), `Compiled` (it is
    part of the bundle the nodes receive)."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The `metadata.generation` this status was computed from."""
    bundle: CompiledBundle | None = None
    """The compiled bundle that carries this policy."""
    selected_nodes: Annotated[int, Field(ge=0)] | None = None
    """Nodes this policy applies to (as source or destination)."""
    synced_nodes: Annotated[int, Field(ge=0)] | None = None
    """Selected nodes that enforce the current bundle."""
    conflicts: Annotated[list[Conflict], Field(max_length=MAX_CONFLICTS)] = Field(
        default_factory=list
    )
    """Conflicts with rules at the same priority (at most 16 shown)."""


class TransferPolicy(Resource):
    """Which cross-border flows between DataSpaceNodes are allowed, and how (B5-B8, R1-R3):
    rules by classification and data category choose allow, deny or review (sandbox plus
    multi-party approval), the channel, the protections (SM4, SM2, desensitisation), limits
    and the circuit breaker. The operator compiles all policies into one bundle that every
    node's gateway enforces."""

    crd: ClassVar[CrdInfo] = CrdInfo(
        kind=TRANSFERPOLICY_KIND,
        plural=TRANSFERPOLICY_PLURAL,
        short_names=TRANSFERPOLICY_SHORT_NAMES,
        printer_columns=(
            PrinterColumn("Priority", ".spec.priority", "integer", "Conflict priority."),
            PrinterColumn(
                "Accepted",
                '.status.conditions[?(@.type=="Accepted")].status',
                "string",
                "Whether the policy is valid and selects nodes.",
            ),
            PrinterColumn("Bundle", ".status.bundle.version", "integer", "Compiled bundle."),
            PrinterColumn(
                "Synced", ".status.syncedNodes", "integer", "Nodes enforcing the bundle."
            ),
            PrinterColumn(
                "Selected", ".status.selectedNodes", "integer", "Nodes selected.", priority=1
            ),
            PrinterColumn(
                "Description", ".spec.description", "string", "What it is for.", priority=1
            ),
            AGE_COLUMN,
        ),
    )
    spec_model: ClassVar[type[SpecModel]] = TransferPolicySpec
    status_model: ClassVar[type[StatusModel]] = TransferPolicyStatus

    kind: Literal["TransferPolicy"] = "TransferPolicy"
    spec: TransferPolicySpec
    """Desired state of the policy."""
    status: TransferPolicyStatus | None = None
    """Observed state of the policy, written by the operator."""
