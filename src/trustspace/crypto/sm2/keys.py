"""SM2 key objects: :class:`SM2PrivateKey` and :class:`SM2PublicKey`.

Conventions:

* ``sign`` returns a DER ``SEQUENCE{r, s}``; ``verify`` returns None or raises
  :class:`InvalidSignature` (``is_valid_signature`` is the bool form);
* the signer ID defaults to ``1234567812345678`` (GB/T 35276-2017) and must match on both
  sides;
* a key's id is the SM3 fingerprint (lowercase hex) of its DER SubjectPublicKeyInfo.

Private keys never show their scalar in ``repr``/``str`` and refuse to be pickled: a key
that must travel goes through ``to_pem()``, on purpose. (Python integers cannot be wiped
from memory; keeping the scalar in one place is the best available.)
"""

from __future__ import annotations

import hmac
import secrets
from typing import NoReturn

from trustspace.crypto.errors import InvalidKey, InvalidSignature
from trustspace.crypto.sm2 import encoding
from trustspace.crypto.sm2.backend import NativeKeyCache, SM2Backend, default_backend
from trustspace.crypto.sm2.curve import COORDINATE_BYTES, N, Point, decode_point, encode_point
from trustspace.crypto.sm2.curve import validate_point as _validate_point
from trustspace.crypto.sm2.digest import DEFAULT_DISTID, check_distid
from trustspace.crypto.sm3 import sm3

__all__ = ["SM2PrivateKey", "SM2PublicKey"]


class SM2PublicKey:
    """An SM2 public key (a validated point on the recommended curve)."""

    __slots__ = ("_der", "_key_id", "_native", "_point")

    def __init__(self, x: int, y: int) -> None:
        self._point: Point = _validate_point(x, y)
        self._der = encoding.encode_spki(self._point)
        self._native = NativeKeyCache()
        # Asked for on every signed request and transfer; the key never changes.
        self._key_id = sm3(self._der).hex()

    # -- loading -------------------------------------------------------------------------

    @classmethod
    def from_point(cls, point: Point) -> SM2PublicKey:
        return cls(*point)

    @classmethod
    def from_bytes(cls, data: bytes) -> SM2PublicKey:
        """From an SEC1 point: 04||X||Y (65 bytes) or compressed 02/03||X (33 bytes)."""
        return cls(*decode_point(bytes(data)))

    @classmethod
    def from_der(cls, data: bytes) -> SM2PublicKey:
        return cls(*encoding.decode_spki(data))

    @classmethod
    def from_pem(cls, data: bytes | str) -> SM2PublicKey:
        """From the first ``PUBLIC KEY`` PEM block (SubjectPublicKeyInfo)."""
        for label, body in encoding.pem_blocks(data):
            if label == encoding.PEM_PUBLIC_KEY:
                return cls.from_der(body)
        raise InvalidKey("no PUBLIC KEY PEM block found")

    # -- export --------------------------------------------------------------------------

    @property
    def point(self) -> Point:
        return self._point

    def to_der(self) -> bytes:
        return self._der

    def to_pem(self) -> bytes:
        return encoding.pem_encode(encoding.PEM_PUBLIC_KEY, self._der)

    def to_bytes(self) -> bytes:
        """Uncompressed SEC1 point 04||X||Y."""
        return encode_point(self._point)

    @property
    def key_id(self) -> str:
        """SM3 fingerprint (hex) of the DER SubjectPublicKeyInfo."""
        return self._key_id

    # -- verification --------------------------------------------------------------------

    def verify(
        self,
        data: bytes,
        signature: bytes,
        *,
        distid: bytes = DEFAULT_DISTID,
        backend: SM2Backend | None = None,
    ) -> None:
        """Return None if ``signature`` (DER) is valid for ``data``; else raise InvalidSignature."""
        decoded = encoding.decode_signature(signature)
        distid = check_distid(distid)
        impl = backend or default_backend()
        if not impl.verify(self._point, bytes(data), decoded, distid, self._native):
            raise InvalidSignature("signature does not verify")

    def is_valid_signature(
        self,
        data: bytes,
        signature: bytes,
        *,
        distid: bytes = DEFAULT_DISTID,
        backend: SM2Backend | None = None,
    ) -> bool:
        try:
            self.verify(data, signature, distid=distid, backend=backend)
        except InvalidSignature:
            return False
        return True

    # -- dunder --------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SM2PublicKey):
            return NotImplemented
        return self._point == other._point

    def __hash__(self) -> int:
        return hash(self._point)

    def __repr__(self) -> str:
        return f"SM2PublicKey(key_id={self.key_id[:16]!r}...)"

    def __reduce__(self) -> tuple[object, tuple[bytes]]:
        # The native cache holds C pointers; rebuild from DER instead.
        return (SM2PublicKey.from_der, (self._der,))


class SM2PrivateKey:
    """An SM2 private key. Construct with :meth:`generate`, :meth:`from_pem` and friends."""

    __slots__ = ("_d", "_native", "_public")

    def __init__(self, d: int, *, backend: SM2Backend | None = None) -> None:
        """From the scalar d in [1, n-2]; the public key is derived by ``backend``."""
        self._d = encoding.check_private_scalar(d)
        impl = backend or default_backend()
        self._public = SM2PublicKey.from_point(impl.derive_public(d))
        self._native = NativeKeyCache()

    @classmethod
    def generate(cls, *, backend: SM2Backend | None = None) -> SM2PrivateKey:
        # GB/T 32918.1-2016, 6.1: d uniformly random in [1, n-2], from the OS CSPRNG.
        return cls(1 + secrets.randbelow(N - 2), backend=backend)

    @classmethod
    def from_bytes(cls, data: bytes, *, backend: SM2Backend | None = None) -> SM2PrivateKey:
        """From the 32-byte big-endian scalar."""
        if len(data) != COORDINATE_BYTES:
            raise InvalidKey("SM2 private key must be 32 bytes")
        return cls(int.from_bytes(data, "big"), backend=backend)

    @classmethod
    def from_der(cls, data: bytes, *, backend: SM2Backend | None = None) -> SM2PrivateKey:
        """From PKCS#8 PrivateKeyInfo or SEC1 ECPrivateKey DER."""
        d, embedded = encoding.decode_private_der(data)
        return cls._checked(d, embedded, backend)

    @classmethod
    def from_pem(cls, data: bytes | str, *, backend: SM2Backend | None = None) -> SM2PrivateKey:
        """From the one private key PEM block in ``data`` (PKCS#8, or SEC1 as OpenSSL writes it).

        Parameter blocks (``SM2 PARAMETERS``, as ``openssl ecparam -genkey`` writes) are
        skipped; encrypted keys are refused.
        """
        found: list[tuple[int, Point | None]] = []
        for label, body in encoding.pem_blocks(data):
            if label == encoding.PEM_PRIVATE_KEY:
                found.append(encoding.decode_pkcs8(body))
            elif label in encoding.PEM_SEC1_LABELS:
                found.append(encoding.decode_sec1(body, curve_required=True))
            elif label == "ENCRYPTED PRIVATE KEY":
                raise InvalidKey("encrypted private keys are not supported")
        if not found:
            raise InvalidKey("no PRIVATE KEY PEM block found")
        if len(found) > 1:
            raise InvalidKey("more than one private key in PEM data")
        return cls._checked(*found[0], backend)

    @classmethod
    def _checked(cls, d: int, embedded: Point | None, backend: SM2Backend | None) -> SM2PrivateKey:
        key = cls(d, backend=backend)
        if embedded is not None and embedded != key._public.point:
            raise InvalidKey("public key stored with the private key does not match it")
        return key

    # -- export --------------------------------------------------------------------------

    def public_key(self) -> SM2PublicKey:
        return self._public

    @property
    def key_id(self) -> str:
        """The key id of the public half (not secret)."""
        return self._public.key_id

    def to_der(self) -> bytes:
        """PKCS#8 PrivateKeyInfo, exactly as OpenSSL 3 writes SM2 keys."""
        return encoding.encode_pkcs8(self._d, self._public.point)

    def to_pem(self) -> bytes:
        return encoding.pem_encode(encoding.PEM_PRIVATE_KEY, self.to_der())

    def to_bytes(self) -> bytes:
        """The 32-byte big-endian scalar."""
        return self._d.to_bytes(COORDINATE_BYTES, "big")

    # -- signing -------------------------------------------------------------------------

    def sign(
        self,
        data: bytes,
        *,
        distid: bytes = DEFAULT_DISTID,
        backend: SM2Backend | None = None,
    ) -> bytes:
        """SM2 signature of SM3(Z_A || data), DER-encoded."""
        distid = check_distid(distid)
        impl = backend or default_backend()
        return impl.sign(self._d, self._public.point, bytes(data), distid, self._native)

    # -- dunder --------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SM2PrivateKey):
            return NotImplemented
        return hmac.compare_digest(self.to_bytes(), other.to_bytes())

    def __hash__(self) -> int:
        return hash(self._public)

    def __repr__(self) -> str:
        return f"SM2PrivateKey(key_id={self.key_id[:16]!r}...)"

    def __copy__(self) -> SM2PrivateKey:
        return self  # immutable

    def __deepcopy__(self, memo: dict[int, object]) -> SM2PrivateKey:
        return self

    def __reduce__(self) -> NoReturn:
        raise TypeError("SM2PrivateKey cannot be pickled; export it with to_pem() explicitly")

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        self.__reduce__()

    def __getstate__(self) -> NoReturn:
        self.__reduce__()
