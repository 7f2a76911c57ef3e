"""The transfer-policy core (issue 7): profiles as data, bundle compilation, decisions, explain.

See docs/policy.md for the precedence and the API the gateway and the operator call.
"""

from trustspace.policy.bundle import BundleError, PolicyBundle
from trustspace.policy.compiler import CompileError, CompileResult, PolicyReport, compile_bundle
from trustspace.policy.decision import (
    ApprovalRequirement,
    ApproverRef,
    CertificationChoice,
    Decision,
    FieldProtection,
    RuleRef,
    TransferRequest,
    Verdict,
)
from trustspace.policy.desensitise import derive_link_key, desensitise
from trustspace.policy.engine import PolicyEngine
from trustspace.policy.explain import Explanation, explain
from trustspace.policy.jurisdiction import JurisdictionProfile, ProfileRule
from trustspace.policy.profile_loader import (
    ProfileChange,
    ProfileError,
    ProfileOverride,
    ProfileSet,
    ProfileWatcher,
    diff_profiles,
    load_profiles,
    overrides_from_configmap,
)

__all__ = [
    "ApprovalRequirement",
    "ApproverRef",
    "BundleError",
    "CertificationChoice",
    "CompileError",
    "CompileResult",
    "Decision",
    "Explanation",
    "FieldProtection",
    "JurisdictionProfile",
    "PolicyBundle",
    "PolicyEngine",
    "PolicyReport",
    "ProfileChange",
    "ProfileError",
    "ProfileOverride",
    "ProfileRule",
    "ProfileSet",
    "ProfileWatcher",
    "RuleRef",
    "TransferRequest",
    "Verdict",
    "compile_bundle",
    "derive_link_key",
    "desensitise",
    "diff_profiles",
    "explain",
    "load_profiles",
    "overrides_from_configmap",
]
