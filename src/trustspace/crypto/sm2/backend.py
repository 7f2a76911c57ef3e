"""The SM2 backend interface and the choice of backend.

A backend does the elliptic-curve work (public key derivation, signing, verification).
Everything else (encodings, validation, range checks, the signer ID) lives above it, so
every backend sees the same canonical inputs and is interchangeable: a signature made by
one verifies with all the others.

Selection: the first available backend in :data:`PREFERENCE` (fastest first, as measured by
``benchmarks/crypto.py``), unless ``TRUSTSPACE_SM2_BACKEND`` names one; a named backend that
cannot be loaded is an error, never a silent fallback.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from trustspace.crypto.errors import BackendUnavailable
from trustspace.crypto.sm2.curve import Point
from trustspace.crypto.sm2.encoding import Signature

__all__ = [
    "ENV_VAR",
    "PREFERENCE",
    "BackendStatus",
    "NativeKeyCache",
    "SM2Backend",
    "backend_status",
    "default_backend",
    "get_backend",
]

ENV_VAR = "TRUSTSPACE_SM2_BACKEND"

#: Fastest first. ``gmssl`` (pure Python) is last and always loads.
PREFERENCE: tuple[str, ...] = ("openssl", "gmssl_pyx", "gmssl")

_MODULES = {
    "openssl": "trustspace.crypto.sm2.openssl_backend",
    "gmssl_pyx": "trustspace.crypto.sm2.gmssl_pyx_backend",
    "gmssl": "trustspace.crypto.sm2.gmssl_backend",
}

_T = TypeVar("_T")


class NativeKeyCache:
    """Per-key storage for backend-native key objects (e.g. a parsed OpenSSL EVP_PKEY).

    Owned by a key object, so a native handle lives exactly as long as the key that made it
    and is parsed once rather than on every signature.
    """

    __slots__ = ("_entries", "_lock")

    def __init__(self) -> None:
        self._entries: dict[str, object] = {}
        self._lock = threading.Lock()

    def get(self, backend: str, factory: Callable[[], _T], kind: type[_T]) -> _T:
        entry = self._entries.get(backend)
        if isinstance(entry, kind):
            return entry
        with self._lock:
            entry = self._entries.get(backend)
            if isinstance(entry, kind):
                return entry
            created = factory()
            self._entries[backend] = created
            return created


@runtime_checkable
class SM2Backend(Protocol):
    """What a backend does. Inputs are already validated by the key classes:

    ``d`` is in [1, n-2], ``public`` is a point on the curve, a signature's r and s are
    in [1, n-1] and its DER is canonical, ``distid`` is at most 8190 bytes.
    """

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str:
        """What implements it, e.g. the OpenSSL version string."""
        ...

    def derive_public(self, d: int) -> Point:
        """Return d·G."""
        ...

    def sign(
        self, d: int, public: Point, message: bytes, distid: bytes, cache: NativeKeyCache
    ) -> bytes:
        """Sign SM3(Z_A || message) with a fresh random k; return DER ``SEQUENCE{r, s}``."""
        ...

    def verify(
        self,
        public: Point,
        message: bytes,
        signature: Signature,
        distid: bytes,
        cache: NativeKeyCache,
    ) -> bool:
        """True when the signature is valid for message; never raises for bad ones."""
        ...


@dataclass(frozen=True)
class BackendStatus:
    name: str
    available: bool
    detail: str  # version when available, the reason when not
    selected: bool


_lock = threading.Lock()
_loaded: dict[str, SM2Backend | BackendUnavailable] = {}
# (value of ENV_VAR it was chosen under, backend): saves the lookup on every signature.
_default: tuple[str, SM2Backend] | None = None


def _load(name: str) -> SM2Backend | BackendUnavailable:
    with _lock:
        cached = _loaded.get(name)
        if cached is not None:
            return cached
        try:
            module = importlib.import_module(_MODULES[name])
            result: SM2Backend | BackendUnavailable = module.load()
        except BackendUnavailable as exc:
            result = exc
        except ImportError as exc:
            result = BackendUnavailable(f"{name}: {exc.__class__.__name__}: {exc}")
        _loaded[name] = result
        return result


def get_backend(name: str) -> SM2Backend:
    """Load a backend by name; raise BackendUnavailable with the reason if it cannot load."""
    if name not in _MODULES:
        raise BackendUnavailable(
            f"unknown SM2 backend {name!r}; choose one of {', '.join(PREFERENCE)}"
        )
    result = _load(name)
    if isinstance(result, BackendUnavailable):
        # A fresh exception: re-raising the cached one would grow its traceback each time.
        raise BackendUnavailable(str(result))
    return result


def default_backend() -> SM2Backend:
    """The backend used when a caller does not pass one (see the module docstring)."""
    global _default
    forced = os.environ.get(ENV_VAR, "").strip()
    chosen = _default
    if chosen is not None and chosen[0] == forced:
        return chosen[1]
    if forced:
        backend = get_backend(forced)
    else:
        for name in PREFERENCE:
            result = _load(name)
            if not isinstance(result, BackendUnavailable):
                backend = result
                break
        else:  # pragma: no cover - gmssl is a dependency and always loads
            raise BackendUnavailable("no SM2 backend could be loaded")
    _default = (forced, backend)
    return backend


def backend_status() -> list[BackendStatus]:
    """Every known backend, whether it loads (and why not), and which one is selected."""
    try:
        selected: str | None = default_backend().name
    except BackendUnavailable:
        selected = None
    rows = []
    for name in PREFERENCE:
        result = _load(name)
        if isinstance(result, BackendUnavailable):
            rows.append(BackendStatus(name, False, str(result), False))
        else:
            rows.append(BackendStatus(name, True, getattr(result, "version", ""), name == selected))
    return rows
