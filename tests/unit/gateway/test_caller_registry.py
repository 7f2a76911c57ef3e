"""The caller registry on its own: modes, token digests, a broken file."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustspace.crypto import sm3
from trustspace_agent.gateway.callers import CallerRefused, Callers, parse_tokens


def digest(token: str) -> str:
    return sm3(token.encode()).hex()


def refused(callers: Callers, headers: dict[str, str], remote: str = "127.0.0.1") -> str:
    with pytest.raises(CallerRefused) as err:
        callers.identify(headers, remote)
    return err.value.code


def test_without_a_file_only_loopback_and_no_claims() -> None:
    callers = Callers(None)
    assert callers.identify({}, "127.0.0.1") == "local"
    assert callers.identify({}, "::1") == "local"
    assert refused(callers, {}, "10.1.2.3") == "local_only"
    assert refused(callers, {}, None) == "local_only"
    assert refused(callers, {"X-Trustspace-Caller": "crm"}) == "unverifiable_caller"


def test_tokens_map_to_callers(tmp_path: Path) -> None:
    path = tmp_path / "callers.yaml"
    path.write_text(f"crm: [sm3:{digest('t1')}, {digest('t2')}]\nbi: {digest('t3')}\n")
    callers = Callers(path)
    assert callers.identify({"Authorization": "Bearer t1"}, "10.0.0.9") == "crm"
    assert callers.identify({"Authorization": "bearer t2"}, None) == "crm"
    assert callers.identify({"Authorization": "Bearer t3", "X-Trustspace-Caller": "bi"}, None)
    assert refused(callers, {"Authorization": "Bearer t4"}) == "unknown_caller"
    assert refused(callers, {"Authorization": "Bearer t3", "X-Trustspace-Caller": "crm"}) == (
        "caller_mismatch"
    )
    assert refused(callers, {"Authorization": "Token t1"}) == "malformed_credentials"
    assert refused(callers, {}) == "missing_credentials"


def test_a_broken_file_keeps_the_last_good_tokens(tmp_path: Path) -> None:
    path = tmp_path / "callers.yaml"
    path.write_text(f"crm: [{digest('t1')}]\n")
    callers = Callers(path)
    assert callers.identify({"Authorization": "Bearer t1"}, None) == "crm"
    path.write_text("crm: [not-a-digest]\n")
    assert refused(callers, {"Authorization": "Bearer t9"}) == "unknown_caller"  # re-read
    assert callers.last_error is not None and "not an SM3 digest" in callers.last_error
    assert callers.identify({"Authorization": "Bearer t1"}, None) == "crm"


def test_no_readable_file_refuses_everyone(tmp_path: Path) -> None:
    callers = Callers(tmp_path / "absent.yaml")
    assert refused(callers, {"Authorization": "Bearer t1"}) == "caller_registry_unavailable"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "expected a mapping"),
        ("crm: []", "expected a list"),
        ("crm: [abc]", "not an SM3 digest"),
        (f"a: [{'a' * 64}]\nb: [{'a' * 64}]", "two callers"),
    ],
)
def test_bad_files_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_tokens(text, "callers.yaml")
