"""SM2 through the system OpenSSL 3 ``libcrypto``, called with :mod:`ctypes`.

``cryptography`` cannot do SM2 signatures (it does not know the curve), but libcrypto has
had SM2 since 1.1.1 and exposes it through the EVP signature API in 3.x. Everything is
declared with explicit ``argtypes``/``restype``: without them ctypes truncates 64-bit
pointers to C ``int``.

Performance and safety notes:

* the parsed ``EVP_PKEY`` is cached per key object (:class:`NativeKeyCache`) and freed
  when the key object goes away, so signing does not re-parse DER;
* ctypes drops the GIL around each foreign call and every operation uses its own
  ``EVP_MD_CTX``, so threads sign concurrently; a shared ``EVP_PKEY`` is only read;
* the signer ID is always set explicitly with ``EVP_PKEY_CTX_set1_id`` right after
  ``EVP_DigestSignInit_ex`` and before any data: OpenSSL 3.0's own default is an *empty*
  ID, not the standard ``1234567812345678``;
* OpenSSL's per-thread error queue is cleared after every failure so errors do not leak
  into unrelated code sharing the library (``hashlib``/``ssl`` load the same libcrypto).

Set ``TRUSTSPACE_LIBCRYPTO`` to the path of a libcrypto to use one other than the system's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from ctypes import POINTER, c_char_p, c_int, c_long, c_size_t, c_ulong, c_void_p
from typing import Any

from trustspace.crypto.errors import BackendUnavailable, CryptoError
from trustspace.crypto.sm2.backend import NativeKeyCache
from trustspace.crypto.sm2.curve import Point, decode_point
from trustspace.crypto.sm2.encoding import Signature, encode_pkcs8, encode_spki
from trustspace.crypto.sm2.selftest import run_selftest

__all__ = ["OpenSSLBackend", "load"]

_MIN_VERSION = 0x3000_0000
_MAX_SIGNATURE = 80  # DER of two 256-bit INTEGERs is at most 72 bytes
_MAX_POINT = 133


class _Lib:
    """The handful of libcrypto functions used here, with their C signatures."""

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)
        self.path = path

        def fn(name: str, restype: object, *argtypes: object) -> Any:
            f = getattr(lib, name)
            f.restype = restype
            f.argtypes = argtypes
            return f

        self.OpenSSL_version_num = fn("OpenSSL_version_num", c_ulong)
        self.OpenSSL_version = fn("OpenSSL_version", c_char_p, c_int)
        self.ERR_get_error = fn("ERR_get_error", c_ulong)
        self.ERR_error_string_n = fn("ERR_error_string_n", None, c_ulong, c_char_p, c_size_t)
        self.ERR_clear_error = fn("ERR_clear_error", None)
        self.d2i_AutoPrivateKey = fn(
            "d2i_AutoPrivateKey", c_void_p, c_void_p, POINTER(c_void_p), c_long
        )
        self.d2i_PUBKEY = fn("d2i_PUBKEY", c_void_p, c_void_p, POINTER(c_void_p), c_long)
        self.EVP_PKEY_free = fn("EVP_PKEY_free", None, c_void_p)
        self.EVP_PKEY_is_a = fn("EVP_PKEY_is_a", c_int, c_void_p, c_char_p)
        self.EVP_PKEY_get_octet_string_param = fn(
            "EVP_PKEY_get_octet_string_param",
            c_int,
            c_void_p,
            c_char_p,
            c_char_p,
            c_size_t,
            POINTER(c_size_t),
        )
        self.EVP_MD_CTX_new = fn("EVP_MD_CTX_new", c_void_p)
        self.EVP_MD_CTX_free = fn("EVP_MD_CTX_free", None, c_void_p)
        init_args = (c_void_p, POINTER(c_void_p), c_char_p, c_void_p, c_char_p, c_void_p, c_void_p)
        self.EVP_DigestSignInit_ex = fn("EVP_DigestSignInit_ex", c_int, *init_args)
        self.EVP_DigestVerifyInit_ex = fn("EVP_DigestVerifyInit_ex", c_int, *init_args)
        self.EVP_DigestSign = fn(
            "EVP_DigestSign", c_int, c_void_p, c_char_p, POINTER(c_size_t), c_char_p, c_size_t
        )
        self.EVP_DigestVerify = fn(
            "EVP_DigestVerify", c_int, c_void_p, c_char_p, c_size_t, c_char_p, c_size_t
        )
        self.EVP_PKEY_CTX_set1_id = fn("EVP_PKEY_CTX_set1_id", c_int, c_void_p, c_char_p, c_int)

    def last_error(self) -> str:
        """Drain the thread's error queue; return the first reason (no key material)."""
        code = self.ERR_get_error()
        first = code
        while code:
            code = self.ERR_get_error()
        if not first:
            return "no OpenSSL error recorded"
        buf = ctypes.create_string_buffer(256)
        self.ERR_error_string_n(first, buf, len(buf))
        return buf.value.decode("ascii", "replace")


class _PKey:
    """Owns one EVP_PKEY; frees it when the owning key object is collected."""

    __slots__ = ("_free", "ptr")

    def __init__(self, lib: _Lib, ptr: int) -> None:
        self.ptr = ptr
        self._free = lib.EVP_PKEY_free

    def __del__(self) -> None:
        if self.ptr:
            self._free(self.ptr)
            self.ptr = 0


class OpenSSLBackend:
    """SM2 sign/verify with libcrypto's EVP API."""

    name = "openssl"

    def __init__(self, lib: _Lib) -> None:
        self._lib = lib
        self.version = lib.OpenSSL_version(0).decode("ascii", "replace")

    # -- EVP_PKEY construction -----------------------------------------------------------

    def _parse(self, der: bytes, private: bool) -> int:
        lib = self._lib
        buf = ctypes.create_string_buffer(der, len(der))
        cursor = c_void_p(ctypes.addressof(buf))
        try:
            parse = lib.d2i_AutoPrivateKey if private else lib.d2i_PUBKEY
            ptr = parse(None, ctypes.byref(cursor), len(der))
        finally:
            # The buffer held the private scalar; do not leave a copy in freed memory.
            ctypes.memset(buf, 0, len(der))
        if not ptr:
            raise CryptoError(f"OpenSSL could not load the SM2 key: {lib.last_error()}")
        if lib.EVP_PKEY_is_a(ptr, b"SM2") != 1:
            # Without the SM2 key type, EVP would produce ECDSA signatures over SM3.
            lib.EVP_PKEY_free(ptr)
            raise CryptoError("OpenSSL did not load the key as an SM2 key")
        return int(ptr)

    def _private(self, d: int, public: Point, cache: NativeKeyCache) -> _PKey:
        return cache.get(
            "openssl:private",
            lambda: _PKey(self._lib, self._parse(encode_pkcs8(d, public), private=True)),
            _PKey,
        )

    def _public(self, public: Point, cache: NativeKeyCache) -> _PKey:
        return cache.get(
            "openssl:public",
            lambda: _PKey(self._lib, self._parse(encode_spki(public), private=False)),
            _PKey,
        )

    # -- SM2Backend ----------------------------------------------------------------------

    def derive_public(self, d: int) -> Point:
        lib = self._lib
        # A PKCS#8 key without its public point makes OpenSSL compute d·G on load.
        pkey = _PKey(lib, self._parse(encode_pkcs8(d, None), private=True))
        out = ctypes.create_string_buffer(_MAX_POINT)
        out_len = c_size_t(0)
        ok = lib.EVP_PKEY_get_octet_string_param(
            pkey.ptr, b"encoded-pub-key", out, _MAX_POINT, ctypes.byref(out_len)
        )
        if ok != 1:
            raise CryptoError(f"OpenSSL could not derive the public key: {lib.last_error()}")
        return decode_point(out.raw[: out_len.value])

    def sign(
        self, d: int, public: Point, message: bytes, distid: bytes, cache: NativeKeyCache
    ) -> bytes:
        lib = self._lib
        pkey = self._private(d, public, cache)
        sig = ctypes.create_string_buffer(_MAX_SIGNATURE)
        sig_len = c_size_t(_MAX_SIGNATURE)
        pctx = c_void_p()
        ctx = lib.EVP_MD_CTX_new()
        if not ctx:
            raise MemoryError("EVP_MD_CTX_new failed")
        try:
            if (
                lib.EVP_DigestSignInit_ex(
                    ctx, ctypes.byref(pctx), b"SM3", None, None, pkey.ptr, None
                )
                != 1
                or lib.EVP_PKEY_CTX_set1_id(pctx, distid, len(distid)) != 1
                or lib.EVP_DigestSign(ctx, sig, ctypes.byref(sig_len), message, len(message)) != 1
            ):
                raise CryptoError(f"OpenSSL SM2 signing failed: {lib.last_error()}")
        finally:
            lib.EVP_MD_CTX_free(ctx)
        return sig.raw[: sig_len.value]

    def verify(
        self,
        public: Point,
        message: bytes,
        signature: Signature,
        distid: bytes,
        cache: NativeKeyCache,
    ) -> bool:
        lib = self._lib
        pkey = self._public(public, cache)
        encoded = signature.der
        pctx = c_void_p()
        ctx = lib.EVP_MD_CTX_new()
        if not ctx:
            raise MemoryError("EVP_MD_CTX_new failed")
        try:
            if (
                lib.EVP_DigestVerifyInit_ex(
                    ctx, ctypes.byref(pctx), b"SM3", None, None, pkey.ptr, None
                )
                != 1
                or lib.EVP_PKEY_CTX_set1_id(pctx, distid, len(distid)) != 1
            ):
                raise CryptoError(f"OpenSSL SM2 verification setup failed: {lib.last_error()}")
            ok = lib.EVP_DigestVerify(ctx, encoded, len(encoded), message, len(message))
        finally:
            lib.EVP_MD_CTX_free(ctx)
        if ok != 1:
            # 0 is "bad signature", negative an error; both leave entries to discard.
            lib.ERR_clear_error()
            return False
        return True


def _candidates() -> list[str]:
    forced = os.environ.get("TRUSTSPACE_LIBCRYPTO", "").strip()
    if forced:
        return [forced]
    names = ["libcrypto.so.3"]
    found = ctypes.util.find_library("crypto")
    if found and found not in names:
        names.append(found)
    return names


def load() -> OpenSSLBackend:
    reasons = []
    for path in _candidates():
        try:
            lib = _Lib(path)
        except (OSError, AttributeError) as exc:
            # AttributeError: a libcrypto older than 3.0 lacks the *_ex functions.
            reasons.append(f"{path}: {exc.__class__.__name__}")
            continue
        if lib.OpenSSL_version_num() < _MIN_VERSION:
            reasons.append(f"{path}: OpenSSL older than 3.0")
            continue
        backend = OpenSSLBackend(lib)
        run_selftest(backend)
        return backend
    raise BackendUnavailable("openssl: no usable libcrypto 3 (" + "; ".join(reasons) + ")")
