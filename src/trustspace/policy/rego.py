"""The same decisions as Rego + data, for comparing against Open Policy Agent.

The data document is the engine's resolved flow table (per source, destination,
classification, category); the Rego module repeats the request-time part: default deny,
multi-category merge, certifications, payload size. Both sides therefore evaluate the same
precomputed index, which is the fair comparison: OPA users precompute data documents too.
Used by `benchmarks/policy.py`; the unit tests check the generated documents' shape.
"""

from __future__ import annotations

from typing import Any

from trustspace.policy.decision import TransferRequest
from trustspace.policy.engine import PolicyEngine

PACKAGE = "trustspace.policy"
QUERY = f"data.{PACKAGE}.decision"

REGO_MODULE = """package trustspace.policy

import rego.v1

# Data without categories is looked up under "": only rules covering every category match.
cats := input.categories if count(input.categories) > 0

cats := [""] if count(input.categories) == 0

outcomes := [o |
	some c in cats
	o := data.flows[input.source][input.destination][input.classification][c]
]

# A flow no rule covers is denied (default deny).
covered if count(outcomes) == count(cats)

any_deny if {
	some o in outcomes
	o.action == "deny"
}

any_review if {
	some o in outcomes
	o.action == "review"
}

certified if {
	every o in outcomes {
		every c in o.certs {
			c in input.certifications
		}
		every g in o.anyCerts {
			some c in g
			c in input.certifications
		}
	}
}

too_big if {
	some o in outcomes
	input.payloadSize > o.maxPayload
}

passes if {
	covered
	not any_deny
	certified
	not too_big
}

default action := "deny"

action := "review" if {
	passes
	any_review
}

action := "allow" if {
	passes
	not any_review
}

approvers contains name if {
	passes
	some o in outcomes
	some group in o.approvals
	some name in group
}

decision := {"action": action, "approvers": approvers}
"""


def rego_data(engine: PolicyEngine) -> dict[str, Any]:
    """`{"flows": {src: {dst: {classification: {category: outcome}}}}}`."""
    flows: dict[str, Any] = {}
    for (src, dst, cls, cat), d in engine.flow_table():
        outcome: dict[str, Any] = {
            "action": d.verdict.value,
            "certs": sorted(d.required_certifications),
            "anyCerts": [sorted(c.any_of) for c in d.certification_choices],
            "approvals": [[a.name for a in req.approvers] for req in d.approvals],
        }
        if d.max_payload_size is not None:
            outcome["maxPayload"] = d.max_payload_size
        flows.setdefault(src, {}).setdefault(dst, {}).setdefault(cls, {})[cat] = outcome
    return {"flows": flows}


def rego_input(request: TransferRequest) -> dict[str, Any]:
    out: dict[str, Any] = {
        "source": request.source,
        "destination": request.destination,
        "classification": request.classification,
        "categories": sorted(request.categories),
        "certifications": sorted(request.recipient_certifications),
    }
    if request.payload_size is not None:
        out["payloadSize"] = request.payload_size
    return out


def expected(engine: PolicyEngine, request: TransferRequest) -> dict[str, Any]:
    """What the Rego `decision` must equal for `request`: the engine's answer, reduced to
    the fields both sides compute."""
    d = engine.decide(request)
    names = sorted({a.name for req in d.approvals for a in req.approvers})
    return {"action": d.verdict.value, "approvers": names if d.verdict != "deny" else []}
