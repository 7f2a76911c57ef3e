"""``trustspace crypto``: the commands people use to check things by hand."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from crypto_support import OpenSSL, load_backend_or_skip

from trustspace.cli import main
from trustspace.crypto import SM2PrivateKey, SM2PublicKey, sm3
from trustspace.crypto.sm2 import ENV_VAR, PREFERENCE

pytestmark = pytest.mark.unit

STANDARD_ID = ("-sigopt", "distid:1234567812345678")


def cli(*args: str | Path, stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(main, ["crypto", *map(str, args)], input=stdin)


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    key, pub = tmp_path / "key.pem", tmp_path / "pub.pem"
    result = cli("keygen", "--out", key)
    assert result.exit_code == 0, result.output
    result = cli("pubkey", key)
    assert result.exit_code == 0, result.output
    pub.write_text(result.output)
    return key, pub


def test_keygen_writes_a_0600_pkcs8_key(tmp_path: Path) -> None:
    out = tmp_path / "k.pem"
    result = cli("keygen", "--out", out)
    assert result.exit_code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    key = SM2PrivateKey.from_pem(out.read_bytes())
    assert result.output.strip() == key.key_id

    again = cli("keygen", "--out", out)
    assert again.exit_code == 2 and "exists" in again.output

    out.chmod(0o644)
    assert cli("keygen", "--out", out, "--force").exit_code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert SM2PrivateKey.from_pem(out.read_bytes()) != key


def test_pubkey_and_fingerprint(keys: tuple[Path, Path]) -> None:
    key, pub = keys
    public = SM2PublicKey.from_pem(pub.read_bytes())
    assert public == SM2PrivateKey.from_pem(key.read_bytes()).public_key()
    for source in (pub, key):
        result = cli("fingerprint", source)
        assert result.exit_code == 0
        assert result.output.strip() == public.key_id


def test_sign_and_verify_exit_codes(keys: tuple[Path, Path], tmp_path: Path) -> None:
    key, pub = keys
    data, sig = tmp_path / "data.bin", tmp_path / "data.sig"
    data.write_bytes(b"shipment manifest")
    assert cli("sign", key, data, "--out", sig).exit_code == 0

    ok = cli("verify", pub, data, sig)
    assert ok.exit_code == 0 and ok.output.startswith("OK")

    data.write_bytes(b"shipment manifest (edited)")
    bad = cli("verify", pub, data, sig)
    assert bad.exit_code == 1
    assert bad.output.strip() == "FAIL: signature does not verify"

    sig.write_bytes(sig.read_bytes()[:10])
    truncated = cli("verify", pub, data, sig)
    assert truncated.exit_code == 1 and "malformed signature" in truncated.output

    missing = cli("verify", tmp_path / "nope.pem", data, sig)
    assert missing.exit_code == 2 and "cannot read" in missing.output

    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key\n")
    not_a_key = cli("verify", garbage, data, sig)
    assert not_a_key.exit_code == 2 and "no PRIVATE KEY" in not_a_key.output

    for result in (ok, bad, truncated, missing, not_a_key):
        assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("backend", PREFERENCE)
def test_cli_signatures_interoperate_with_openssl(
    keys: tuple[Path, Path], openssl: OpenSSL, backend: str
) -> None:
    load_backend_or_skip(backend)
    key, pub = keys
    message, ours, theirs = (openssl.workdir / n for n in ("msg", "ours.sig", "theirs.sig"))
    message.write_bytes(b"x" * 1000)

    result = cli("sign", key, message, "--out", ours, "--backend", backend)
    assert result.exit_code == 0, result.output
    openssl.run("dgst", "-sm3", "-verify", str(pub), *STANDARD_ID, "-signature", str(ours),
                str(message))  # fmt: skip

    openssl.run("dgst", "-sm3", "-sign", str(key), *STANDARD_ID, "-out", str(theirs),
                str(message))  # fmt: skip
    result = cli("verify", pub, message, theirs, "--backend", backend)
    assert result.exit_code == 0, result.output


def test_custom_signer_id(keys: tuple[Path, Path], tmp_path: Path) -> None:
    key, pub = keys
    data, sig = tmp_path / "d", tmp_path / "s"
    data.write_bytes(b"d")
    assert cli("sign", key, data, "--out", sig, "--distid", "node-7").exit_code == 0
    assert cli("verify", pub, data, sig, "--distid", "node-7").exit_code == 0
    assert cli("verify", pub, data, sig).exit_code == 1


def test_digest_of_file_and_stdin(tmp_path: Path) -> None:
    f = tmp_path / "abc"
    f.write_bytes(b"abc")
    expected = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert cli("digest", f).output.strip() == expected
    assert cli("digest", "-", stdin=b"abcd" * 16).output.strip() == sm3(b"abcd" * 16).hex()
    assert cli("digest", tmp_path / "none").exit_code == 2


def test_backends_lists_all_and_marks_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    result = cli("backends")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert [line[2:].split()[0] for line in lines] == list(PREFERENCE)
    assert sum(line.startswith("*") for line in lines) == 1
    assert lines[-1][2:].split()[:2] == ["gmssl", "available"]

    monkeypatch.setenv(ENV_VAR, "gmssl")
    selected = [line[2:] for line in cli("backends").output.splitlines() if line[0] == "*"]
    assert len(selected) == 1 and selected[0].startswith("gmssl ")

    monkeypatch.setenv(ENV_VAR, "bogus")
    broken = cli("backends")
    assert broken.exit_code == 2 and "unknown SM2 backend 'bogus'" in broken.output
