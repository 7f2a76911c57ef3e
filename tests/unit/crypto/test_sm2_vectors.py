"""SM2 against the published example (GM/T 0003.5-2012 Annex A, recommended curve).

The values are restated here rather than imported from the package's self-test, so a typo
in one place cannot hide in both.
"""

from __future__ import annotations

import pytest
from crypto_support import OpenSSL

from trustspace.crypto import DEFAULT_DISTID, SM2Backend, SM2PrivateKey, SM2PublicKey
from trustspace.crypto.sm2 import curve, encoding
from trustspace.crypto.sm2.digest import message_digest, z_value
from trustspace.crypto.sm2.gmssl_backend import GmsslBackend

pytestmark = pytest.mark.unit


def h(text: str) -> int:
    return int(text.replace(" ", ""), 16)


D = h("3945208F 7B2144B1 3F36E38A C6D39F95 88939369 2860B51A 42FB81EF 4DF7C5B8")
PX = h("09F9DF31 1E5421A1 50DD7D16 1E4BC5C6 72179FAD 1833FC07 6BB08FF3 56F35020")
PY = h("CCEA490C E26775A5 2DC6EA71 8CC1AA60 0AED05FB F35E084A 6632F607 2DA9AD13")
MESSAGE = b"message digest"
ZA = h("B2E14C5C 79C6DF5B 85F4FE7E D8DB7A26 2B9DA7E0 7CCB0EA9 F4747B8C CDA8A4F3")
E = h("F0B43E94 BA45ACCA ACE692ED 534382EB 17E6AB5A 19CE7B31 F4486FDF C0D28640")
K = h("59276E27 D506861A 16680F3A D9C02DCC EF3CC1FA 3CDBE4CE 6D54B80D EAC1BC21")
R = h("F5A03B06 48D2C463 0EEAC513 E1BB81A1 5944DA38 27D5B741 43AC7EAC EEE720B3")
S = h("B1B6AA29 DF212FD8 763182BC 0D421CA1 BB9038FD 1F7F42D4 840B69C4 85BBC1AA")


def test_default_distid_is_the_standard_one() -> None:
    assert DEFAULT_DISTID == b"1234567812345678"


def test_curve_parameters_are_consistent() -> None:
    assert curve.is_on_curve(curve.GX, curve.GY)
    assert curve.is_on_curve(PX, PY)
    assert curve.P % 4 == 3


def test_public_key_from_private(backend: SM2Backend) -> None:
    assert backend.derive_public(D) == (PX, PY)


def test_z_value_and_message_representative() -> None:
    assert z_value((PX, PY), DEFAULT_DISTID) == ZA.to_bytes(32, "big")
    assert message_digest((PX, PY), MESSAGE, DEFAULT_DISTID) == E


def test_signature_with_the_published_k() -> None:
    # Only the pure-Python backend can take a chosen k; OpenSSL and GmSSL draw their own.
    assert GmsslBackend().sign_digest_with_k(D, E, K) == (R, S)


def test_every_backend_accepts_the_published_signature(backend: SM2Backend) -> None:
    key = SM2PublicKey(PX, PY)
    signature = encoding.encode_signature(R, S)
    key.verify(MESSAGE, signature, backend=backend)
    assert not key.is_valid_signature(MESSAGE + b" ", signature, backend=backend)
    assert not key.is_valid_signature(MESSAGE, encoding.encode_signature(R, S ^ 1), backend=backend)
    assert not key.is_valid_signature(
        MESSAGE, signature, distid=b"ALICE123@YAHOO.COM", backend=backend
    )


def test_openssl_cli_accepts_the_published_signature(openssl: OpenSSL) -> None:
    key = SM2PrivateKey(D)
    (openssl.workdir / "pub.pem").write_bytes(key.public_key().to_pem())
    (openssl.workdir / "msg").write_bytes(MESSAGE)
    (openssl.workdir / "sig").write_bytes(encoding.encode_signature(R, S))
    out = openssl.run(
        "dgst",
        "-sm3",
        "-verify",
        "pub.pem",
        "-sigopt",
        "distid:1234567812345678",
        "-signature",
        "sig",
        "msg",
    ).stdout
    assert out.strip() == b"Verified OK"
