"""The seeds acted out by real gateways over HTTPS with the sample policies (B5-B7, R2, R3)."""

from __future__ import annotations

from support.gateway_harness import GatewayHarness

PATIENT = {
    "patient": {
        "name": "Somchai Jaidee",
        "idNumber": "3-1012-00345-67-8",
        "birthDate": "1980-04-17",
        "address": "99 Sukhumvit Rd, Rayong",
        "bloodType": "O+",
    },
    "diagnosis": "J45",
}


def test_logistics_tracks_cross_on_the_auto_channel(space: GatewayHarness) -> None:
    track = {"truck": "29C-123.45", "lat": 21.0285, "lon": 105.8542, "cargo": "rice"}
    status, answer = space.transfer("vn-hanoi", "cn-nanning", "internal", ["logistics"], [track])
    assert status == 201, answer
    assert answer["state"] == "Delivered"
    tid = answer["id"]
    status, got = space.inbox("cn-nanning", tid)
    assert status == 200
    assert got["records"] == [track]
    assert got["metadata"]["decision"]["channel"] == "auto"
    assert got["evidence"]["signature"]  # the source's SM2 signature, kept as evidence
    assert space.audit_actions("vn-hanoi", tid) == [
        "transfer.requested",
        "transfer.allowed",
        "transfer.protected",
        "transfer.delivered",
    ]
    # Received, then read (the decrypted payload, by an identified caller).
    assert space.audit_actions("cn-nanning", tid) == ["transfer.received", "inbox.read"]


def test_health_records_wait_for_two_of_three_and_arrive_masked(space: GatewayHarness) -> None:
    status, held = space.transfer("th-rayong", "cn-nanning", "internal", ["health"], [PATIENT])
    assert status == 202, held
    tid = held["id"]
    assert held["state"] == "Held" and held["channel"] == "review"
    assert space.inbox("cn-nanning", tid)[0] == 404  # the sandbox channel: nothing forwarded

    status, answer = space.approve("th-rayong", tid, "hub-compliance-office")
    assert (status, answer["state"]) == (200, "Held")
    assert space.inbox("cn-nanning", tid)[0] == 404
    status, answer = space.approve("th-rayong", tid, "recipient-data-protection-officer")
    assert (status, answer["state"]) == (201, "Delivered"), answer

    status, got = space.inbox("cn-nanning", tid)
    assert status == 200
    patient = got["records"][0]["patient"]
    assert patient["name"] == "S" + "*" * (len("Somchai Jaidee") - 1)  # mask keepFirst 1
    assert patient["idNumber"].startswith("sm3h:")  # HMAC-SM3 pseudonym, keyed per link
    assert patient["birthDate"] == "1980"  # generalised, level 2
    assert "address" not in patient  # dropped
    assert patient["bloodType"] == "O+"
    assert [a["approver"] for a in got["approvals"]] == [
        "hub-compliance-office",
        "recipient-data-protection-officer",
    ]
    actions = space.audit_actions("th-rayong", tid)
    assert actions[:3] == ["transfer.requested", "transfer.queued", "transfer.protected"]
    assert actions.count("transfer.approved") == 2
    assert actions[-1] == "transfer.delivered"


def test_pseudonyms_are_stable_on_a_link(space: GatewayHarness) -> None:
    tokens = []
    for approver in ("source-data-protection-officer", "hub-compliance-office"):
        _, held = space.transfer("th-rayong", "cn-nanning", "internal", ["health"], [PATIENT])
        space.approve("th-rayong", held["id"], approver)
        other = "recipient-data-protection-officer"
        assert space.approve("th-rayong", held["id"], other)[0] == 201
        tokens.append(space.inbox("cn-nanning", held["id"])[1]["records"][0]["patient"])
    assert tokens[0]["idNumber"] == tokens[1]["idNumber"]


def test_health_records_rejected_when_two_of_three_refuse(space: GatewayHarness) -> None:
    _, held = space.transfer("th-rayong", "cn-nanning", "internal", ["health"], [PATIENT])
    tid = held["id"]
    assert space.approve("th-rayong", tid, "hub-compliance-office", "reject")[1]["state"] == "Held"
    status, answer = space.approve("th-rayong", tid, "source-data-protection-officer", "reject")
    assert (status, answer["state"]) == (200, "Rejected")
    status, answer = space.approve("th-rayong", tid, "recipient-data-protection-officer")
    assert (status, answer["code"]) == (409, "not_held")
    assert space.inbox("cn-nanning", tid)[0] == 404
    assert "transfer.rejected" in space.audit_actions("th-rayong", tid)


def test_vietnamese_important_data_needs_both_approvals(space: GatewayHarness) -> None:
    status, held = space.transfer("vn-hanoi", "cn-nanning", "important", ["trade"])
    assert status == 202, held
    tid = held["id"]
    assert held["approvals"][0]["approvers"] == [
        "vn-ministry-of-public-security",
        "vn-prime-ministers-office",
    ]
    assert held["approvals"][0]["minApprovals"] == 2
    # Someone else's approval does not count, however authentic.
    status, answer = space.approve("vn-hanoi", tid, "hub-compliance-office")
    assert (status, answer["code"], answer["field"]) == (403, "not_an_approver", "approver")
    assert space.approve("vn-hanoi", tid, "vn-prime-ministers-office")[1]["state"] == "Held"
    assert space.inbox("cn-nanning", tid)[0] == 404
    status, answer = space.approve("vn-hanoi", tid, "vn-ministry-of-public-security")
    assert (status, answer["state"]) == (201, "Delivered")
    assert space.inbox("cn-nanning", tid)[0] == 200
    assert "transfer.approval_refused" in space.audit_actions("vn-hanoi", tid)


def test_malaysian_data_waits_for_the_security_assessment(space: GatewayHarness) -> None:
    status, held = space.transfer("my-kuantan", "cn-nanning", "internal", ["logistics"])
    assert status == 202, held
    assert held["approvals"][0]["approvers"] == ["my-national-security-assessor"]
    status, answer = space.approve("my-kuantan", held["id"], "my-national-security-assessor")
    assert (status, answer["state"]) == (201, "Delivered")


def test_singapore_personal_data_refused_without_certification(space: GatewayHarness) -> None:
    record = {"customer": {"name": "Tan Ah Kow", "phone": "+6591234567"}}
    status, answer = space.transfer(
        "sg-singapore", "cn-nanning", "internal", ["personal"], [record], caller="crm"
    )
    assert status == 403
    assert answer["code"] == "denied"
    assert "apec-cbpr" in answer["message"]
    assert space.audit_actions("sg-singapore", answer["id"]) == [
        "transfer.requested",
        "transfer.denied",
    ]


def test_singapore_personal_data_masked_for_certified_recipient(
    space: GatewayHarness,
) -> None:
    # The sender's claim is checked twice: the destination decides again with its own
    # certifications, which cn-nanning does not hold.
    record = {"customer": {"name": "Tan Ah Kow", "phone": "+6591234567"}}
    status, answer = space.transfer(
        "sg-singapore",
        "cn-nanning",
        "internal",
        ["personal"],
        [record],
        caller="crm",
        recipientCertifications=["apec-cbpr"],
    )
    assert status == 502, answer
    assert answer["destinationCode"] == "inbound_denied"
    assert space.inbox("cn-nanning", answer["id"])[0] == 404


def test_chinese_negative_list_data_held_for_assessment(space: GatewayHarness) -> None:
    status, held = space.transfer("cn-nanning", "vn-hanoi", "important", ["logistics"])
    assert status == 202, held
    assert held["approvals"][0]["approvers"] == ["cn-outbound-data-security-assessor"]
    assert space.inbox("vn-hanoi", held["id"])[0] == 404
    status, answer = space.approve("cn-nanning", held["id"], "cn-outbound-data-security-assessor")
    assert (status, answer["state"]) == (201, "Delivered")
    assert space.inbox("vn-hanoi", held["id"])[0] == 200
