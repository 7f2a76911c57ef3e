"""Backend selection, thread safety, and the gmssl pitfalls the pure-Python backend avoids."""

from __future__ import annotations

import secrets
import threading

import pytest
from crypto_support import load_backend_or_skip

from trustspace.crypto import (
    BackendUnavailable,
    SM2Backend,
    SM2PrivateKey,
    backend_status,
    default_backend,
    get_backend,
)
from trustspace.crypto.sm2 import ENV_VAR, PREFERENCE, curve, encoding
from trustspace.crypto.sm2.backend import NativeKeyCache
from trustspace.crypto.sm2.gmssl_backend import GmsslBackend

pytestmark = pytest.mark.unit


def test_pure_python_backend_always_loads() -> None:
    assert get_backend("gmssl").name == "gmssl"
    assert PREFERENCE[-1] == "gmssl"


def test_default_is_the_first_available_in_preference_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    rows = backend_status()
    assert [r.name for r in rows] == list(PREFERENCE)
    first = next(r.name for r in rows if r.available)
    assert default_backend().name == first
    assert [r.name for r in rows if r.selected] == [first]
    for row in rows:
        assert row.detail  # a version, or the reason it is unavailable


@pytest.mark.parametrize("name", PREFERENCE)
def test_environment_variable_forces_a_backend(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    load_backend_or_skip(name)
    monkeypatch.setenv(ENV_VAR, name)
    assert default_backend().name == name
    assert [r.name for r in backend_status() if r.selected] == [name]


def test_unknown_forced_backend_is_an_error_not_a_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_VAR, "nonesuch")
    with pytest.raises(BackendUnavailable, match="unknown SM2 backend 'nonesuch'"):
        default_backend()
    with pytest.raises(BackendUnavailable):
        SM2PrivateKey.generate()
    assert not any(r.selected for r in backend_status())


def test_concurrent_signing_with_one_key(backend: SM2Backend) -> None:
    key = SM2PrivateKey.generate(backend=backend)
    public = key.public_key()
    per_thread = 30 if backend.name != "gmssl" else 3
    results: list[tuple[bytes, bytes]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        try:
            for i in range(per_thread):
                message = f"thread {n} message {i}".encode()
                signature = key.sign(message, backend=backend)
                public.verify(message, signature, backend=backend)
                with lock:
                    results.append((message, signature))
        except BaseException as exc:  # surfaced below, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 6 * per_thread
    reference = get_backend("gmssl")
    for message, signature in results[:: max(1, len(results) // 6)]:
        public.verify(message, signature, backend=reference)


def test_openssl_backend_parses_a_key_once() -> None:
    backend = load_backend_or_skip("openssl")
    cache = NativeKeyCache()
    key = SM2PrivateKey.generate(backend=backend)
    d = int.from_bytes(key.to_bytes(), "big")
    point = key.public_key().point
    backend.sign(d, point, b"a", b"id", cache)
    entries = dict(cache._entries)
    backend.sign(d, point, b"b", b"id", cache)
    backend.verify(
        point, b"a", encoding.decode_signature(encoding.encode_signature(1, 1)), b"id", cache
    )
    assert cache._entries["openssl:private"] is entries["openssl:private"]
    assert "openssl:public" in cache._entries


def test_gmssl_key_whose_hex_starts_with_0_or_4() -> None:
    """gmssl's constructor would ``lstrip("04")`` such a key; ours never hands it over."""
    gm = get_backend("gmssl")
    reference = load_backend_or_skip("openssl")
    while True:
        key = SM2PrivateKey.generate(backend=reference)
        if key.public_key().to_bytes()[1:].hex()[0] in "04":
            break
    signature = key.sign(b"payload", backend=gm)
    key.public_key().verify(b"payload", signature, backend=reference)
    key.public_key().verify(b"payload", key.sign(b"payload", backend=reference), backend=gm)


def test_verification_special_cases_do_not_crash(backend: SM2Backend) -> None:
    """Forge s·G = ±t·P_A (needs d, so built here) to hit the exceptional additions."""
    d = 1 + secrets.randbelow(curve.N - 2)
    public = SM2PrivateKey(d, backend=backend).public_key()
    t = 12345
    for s in ((-t * d) % curve.N, (t * d) % curve.N):  # sum at infinity, then a doubling
        signature = encoding.encode_signature((t - s) % curve.N, s)
        assert not public.is_valid_signature(b"m", signature, backend=backend)


def test_valid_signature_whose_halves_are_equal_points() -> None:
    """gmssl's own verify returns a projective X here; the complete addition gets it right.

    With c = 2d/(1-d), k = c·r and s = r·d/(1-d): s·G = t·P_A and s·G + t·P_A = k·G.
    e is chosen to fit, which only the digest-level entry point allows.
    """
    gm = GmsslBackend()
    n = curve.N
    d = 1 + secrets.randbelow(n - 2)
    point = gm.derive_public(d)
    r = 1 + secrets.randbelow(n - 1)
    k = 2 * d * pow(1 - d, -1, n) * r % n
    s = r * d * pow(1 - d, -1, n) % n
    e = (r - gm.derive_public(k)[0]) % n
    assert gm.verify_digest(point, e, (r, s))
    assert not gm.verify_digest(point, (e + 1) % n, (r, s))


def test_pure_python_backend_draws_k_from_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    # If k came from `random`, seeding it would make signatures repeat.
    key = SM2PrivateKey.generate(backend=get_backend("openssl"))
    gm = get_backend("gmssl")
    random.seed(1)
    first = key.sign(b"x", backend=gm)
    random.seed(1)
    second = key.sign(b"x", backend=gm)
    assert first != second


def test_openssl_backend_reports_why_it_cannot_load(monkeypatch: pytest.MonkeyPatch) -> None:
    from trustspace.crypto.sm2 import openssl_backend

    monkeypatch.setenv("TRUSTSPACE_LIBCRYPTO", "/nonexistent/libcrypto.so.3")
    with pytest.raises(BackendUnavailable, match=r"no usable libcrypto 3.*OSError"):
        openssl_backend.load()
