"""SM2 interop with the real OpenSSL 3 CLI, both ways, on every backend.

Note on the signer ID: OpenSSL 3.0's ``dgst``/``pkeyutl`` use an *empty* ID unless told
otherwise, so the standard ID is passed explicitly with ``-sigopt distid:...``.
"""

from __future__ import annotations

import pytest
from crypto_support import OpenSSL

from trustspace.crypto import (
    DEFAULT_DISTID,
    InvalidKey,
    InvalidSignature,
    SM2Backend,
    SM2PrivateKey,
    SM2PublicKey,
)
from trustspace.crypto.sm2 import curve, encoding

pytestmark = pytest.mark.unit

DISTID_OPT = ("-sigopt", f"distid:{DEFAULT_DISTID.decode()}")
MESSAGE = b"Guangxi hub -> ASEAN edge: manifest v1\n" * 50


def _openssl_keypair(openssl: OpenSSL) -> tuple[bytes, bytes]:
    openssl.run(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", "key.pem"
    )
    openssl.run("pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem")
    return (openssl.workdir / "key.pem").read_bytes(), (openssl.workdir / "pub.pem").read_bytes()


def _openssl_verify(openssl: OpenSSL, pub_pem: bytes, message: bytes, signature: bytes) -> bool:
    (openssl.workdir / "v-pub.pem").write_bytes(pub_pem)
    (openssl.workdir / "v-msg").write_bytes(message)
    (openssl.workdir / "v-sig").write_bytes(signature)
    proc = openssl.run(
        "dgst",
        "-sm3",
        "-verify",
        "v-pub.pem",
        *DISTID_OPT,
        "-signature",
        "v-sig",
        "v-msg",
        check=False,
    )
    return proc.returncode == 0 and proc.stdout.strip() == b"Verified OK"


def test_openssl_key_loads_and_our_signature_verifies_in_openssl(
    openssl: OpenSSL, backend: SM2Backend
) -> None:
    key_pem, pub_pem = _openssl_keypair(openssl)
    key = SM2PrivateKey.from_pem(key_pem, backend=backend)
    assert key.public_key() == SM2PublicKey.from_pem(pub_pem)
    signature = key.sign(MESSAGE, backend=backend)
    assert _openssl_verify(openssl, pub_pem, MESSAGE, signature)
    # The CLI is a real check, not a rubber stamp:
    assert not _openssl_verify(openssl, pub_pem, MESSAGE + b"x", signature)


def test_openssl_signature_verifies_with_us(openssl: OpenSSL, backend: SM2Backend) -> None:
    _, pub_pem = _openssl_keypair(openssl)
    (openssl.workdir / "msg").write_bytes(MESSAGE)
    openssl.run("dgst", "-sm3", "-sign", "key.pem", *DISTID_OPT, "-out", "sig", "msg")
    signature = (openssl.workdir / "sig").read_bytes()
    public = SM2PublicKey.from_pem(pub_pem)
    public.verify(MESSAGE, signature, backend=backend)
    with pytest.raises(InvalidSignature):
        public.verify(MESSAGE[:-1], signature, backend=backend)


def test_openssl_default_signer_id_is_not_the_standard_one(
    openssl: OpenSSL, backend: SM2Backend
) -> None:
    """Without -sigopt, OpenSSL 3.0 signs with an empty ID: document it, and stay usable."""
    _, pub_pem = _openssl_keypair(openssl)
    (openssl.workdir / "msg").write_bytes(MESSAGE)
    openssl.run("dgst", "-sm3", "-sign", "key.pem", "-out", "sig", "msg")
    signature = (openssl.workdir / "sig").read_bytes()
    public = SM2PublicKey.from_pem(pub_pem)
    with_empty = public.is_valid_signature(MESSAGE, signature, distid=b"", backend=backend)
    with_standard = public.is_valid_signature(MESSAGE, signature, backend=backend)
    assert with_empty != with_standard
    if openssl.version().startswith("3.0."):
        assert with_empty


def test_our_keys_load_in_openssl(openssl: OpenSSL, backend: SM2Backend) -> None:
    key = SM2PrivateKey.generate(backend=backend)
    (openssl.workdir / "ours.pem").write_bytes(key.to_pem())
    (openssl.workdir / "ours-pub.pem").write_bytes(key.public_key().to_pem())
    text = openssl.run("pkey", "-in", "ours.pem", "-noout", "-text").stdout.decode()
    assert "ASN1 OID: SM2" in text
    openssl.run("pkey", "-pubin", "-in", "ours-pub.pem", "-noout")
    # OpenSSL derives the same public key and re-encodes both keys byte for byte.
    derived = openssl.run("pkey", "-in", "ours.pem", "-pubout").stdout
    assert derived == key.public_key().to_pem()
    assert openssl.run("pkey", "-in", "ours.pem").stdout == key.to_pem()
    # And OpenSSL signs with our key in a way we accept.
    (openssl.workdir / "msg").write_bytes(MESSAGE)
    openssl.run("dgst", "-sm3", "-sign", "ours.pem", *DISTID_OPT, "-out", "sig", "msg")
    key.public_key().verify(MESSAGE, (openssl.workdir / "sig").read_bytes(), backend=backend)


def test_openssl_pem_is_reproduced_byte_for_byte(openssl: OpenSSL) -> None:
    key_pem, pub_pem = _openssl_keypair(openssl)
    key = SM2PrivateKey.from_pem(key_pem)
    assert key.to_pem() == key_pem
    assert key.public_key().to_pem() == pub_pem


def test_sec1_and_parameter_blocks_from_openssl(openssl: OpenSSL) -> None:
    key_pem, _ = _openssl_keypair(openssl)
    reference = SM2PrivateKey.from_pem(key_pem)
    sec1 = openssl.run("ec", "-in", "key.pem").stdout  # "SM2 PRIVATE KEY", SEC1 with [0] curve
    assert b"BEGIN SM2 PRIVATE KEY" in sec1
    assert SM2PrivateKey.from_pem(sec1) == reference
    der = openssl.run("ec", "-in", "key.pem", "-outform", "DER").stdout
    assert SM2PrivateKey.from_der(der) == reference
    with_params = openssl.run("ecparam", "-name", "SM2", "-genkey").stdout
    assert b"SM2 PARAMETERS" in with_params
    SM2PrivateKey.from_pem(with_params).sign(b"x")


def test_compressed_public_key_from_openssl(openssl: OpenSSL) -> None:
    _, pub_pem = _openssl_keypair(openssl)
    compressed = openssl.run(
        "ec", "-pubin", "-in", "pub.pem", "-pubout", "-conv_form", "compressed"
    ).stdout
    assert compressed != pub_pem
    assert SM2PublicKey.from_pem(compressed) == SM2PublicKey.from_pem(pub_pem)


def test_key_id_is_sm3_of_the_der_public_key(openssl: OpenSSL) -> None:
    _, pub_pem = _openssl_keypair(openssl)
    openssl.run("pkey", "-pubin", "-in", "pub.pem", "-outform", "DER", "-out", "pub.der")
    out = openssl.run("dgst", "-sm3", "-r", "pub.der").stdout.decode()
    assert SM2PublicKey.from_pem(pub_pem).key_id == out.split()[0]


def test_rejections(openssl: OpenSSL, backend: SM2Backend) -> None:
    key_pem, pub_pem = _openssl_keypair(openssl)
    key = SM2PrivateKey.from_pem(key_pem, backend=backend)
    public = key.public_key()
    signature = key.sign(MESSAGE, backend=backend)
    public.verify(MESSAGE, signature, backend=backend)

    with pytest.raises(InvalidSignature, match="does not verify"):  # tampered message
        public.verify(MESSAGE.replace(b"v1", b"v2"), signature, backend=backend)
    r, s, _ = encoding.decode_signature(signature)
    for forged in ((r ^ 1, s), (r, s ^ (1 << 100))):  # tampered signature
        with pytest.raises(InvalidSignature, match="does not verify"):
            public.verify(MESSAGE, encoding.encode_signature(*forged), backend=backend)
    other = SM2PrivateKey.generate(backend=backend).public_key()
    with pytest.raises(InvalidSignature, match="does not verify"):  # wrong key
        other.verify(MESSAGE, signature, backend=backend)
    for cut in (0, 1, 8, len(signature) - 1):  # truncated DER
        with pytest.raises(InvalidSignature, match="malformed"):
            public.verify(MESSAGE, signature[:cut], backend=backend)
    with pytest.raises(InvalidSignature, match="malformed"):  # trailing garbage
        public.verify(MESSAGE, signature + b"\x00", backend=backend)

    # A public point that is not on the curve never gets as far as a backend.
    x, y = public.point
    spki = bytearray(public.to_der())
    spki[-1] ^= 0x01
    with pytest.raises(InvalidKey, match="not on the SM2 curve"):
        SM2PublicKey.from_der(bytes(spki))
    with pytest.raises(InvalidKey, match="not on the SM2 curve"):
        SM2PublicKey(x, (y + 1) % curve.P)
    # OpenSSL agrees that the altered key is bad.
    bad_pem = encoding.pem_encode("PUBLIC KEY", bytes(spki))
    (openssl.workdir / "bad.pem").write_bytes(bad_pem)
    assert openssl.run("pkey", "-pubin", "-in", "bad.pem", "-noout", check=False).returncode != 0
    assert pub_pem != bad_pem
