from __future__ import annotations

import json
import logging

import pytest

from trustspace import logs

PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqBHM9VAYItBG0wawIBAQQg\n"
    "-----END PRIVATE KEY-----"
)


def test_json_lines_carry_extra_fields(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("unit-test", fmt="json", level="info")
    logging.getLogger("t").info("reconciled %s", "vn-hanoi", extra={"node": "vn-hanoi", "ms": 12})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    doc = json.loads(line)
    assert doc["msg"] == "reconciled vn-hanoi"
    assert doc["node"] == "vn-hanoi" and doc["ms"] == 12
    assert doc["component"] == "unit-test" and doc["level"] == "info"


def test_private_keys_never_reach_the_log(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("unit-test", fmt="human")
    logging.getLogger("t").warning("loaded %s", PEM)
    err = capsys.readouterr().err
    assert "MIGHAgEA" not in err
    assert "[REDACTED PRIVATE KEY]" in err
