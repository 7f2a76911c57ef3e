"""Who is calling the gateway's local API (``POST /v1/transfers``, the inbox, link resets).

The caller's name is what the per-caller circuit breaker counts (B8) and what every audit
event of the transfer names as ``actor``, so a name the caller merely claims is worth
nothing: anyone able to reach the port could trip someone else's breaker or act under their
name. Two modes:

* ``callerTokensFile`` set (what a deployment does; the local API listens on the pod's
  address behind a Service): every call carries ``Authorization: Bearer <token>``. The file
  (a mounted Secret) maps each caller to the SM3 digests of its tokens, several during a
  rotation, never the tokens themselves::

      logistics-exporter: [5f1d...e0]      # sm3(token).hex(); "sm3:" prefix optional
      crm: [9a0c...41, 77b2...0f]

  The caller is the name its token maps to. ``X-Trustspace-Caller`` may still be sent, but
  must then be that name. The file is re-read when it changes (a token revoked is refused
  within a second; a token added works at once).
* No file (a developer's machine, the quickstart): callers are not told apart. Only
  loopback connections are served, all as ``local``, and a claimed identity (either header)
  is refused rather than recorded unverified.

Lookup is by the SM3 digest of the presented token: timing can at most reveal something
about a digest, from which no token can be recovered, so no constant-time compare is needed.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from collections.abc import Mapping
from pathlib import Path

import yaml

from trustspace.crypto import sm3
from trustspace.refusal import HttpRefusal

log = logging.getLogger(__name__)

CALLER_HEADER = "X-Trustspace-Caller"
LOCAL = "local"
UNAUTHENTICATED = "unauthenticated"
_DIGEST = re.compile(r"^(sm3:)?([0-9a-f]{64})$")
_RECHECK_SECONDS = 1.0


class CallerRefused(HttpRefusal):
    """A call without an identity this gateway can verify (401/403 + audit event)."""


def _loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def parse_tokens(text: str, origin: str) -> dict[str, str]:
    """``{sm3 digest: caller}`` from the YAML of a caller tokens file; ValueError names the
    entry that is wrong."""
    raw = yaml.safe_load(text) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{origin}: expected a mapping of caller name to token digests")
    out: dict[str, str] = {}
    for name, digests in raw.items():
        if not isinstance(name, str) or not 0 < len(name) <= 253:
            raise ValueError(f"{origin}: caller name {name!r} must be 1..253 characters")
        items = [digests] if isinstance(digests, str) else digests
        if not isinstance(items, list) or not items:
            raise ValueError(f"{origin}: {name}: expected a list of token digests")
        for d in items:
            m = _DIGEST.match(str(d).strip().lower())
            if m is None:
                raise ValueError(f"{origin}: {name}: {d!r} is not an SM3 digest (64 hex digits)")
            if out.setdefault(m.group(2), name) != name:
                raise ValueError(f"{origin}: one token digest is listed for two callers")
    return out


class Callers:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._tokens: dict[str, str] | None = None
        self._checked = -_RECHECK_SECONDS
        self.last_error: str | None = None

    def _refresh(self, force: bool) -> dict[str, str] | None:
        assert self.path is not None
        now = time.monotonic()
        if not force and now - self._checked < _RECHECK_SECONDS:
            return self._tokens
        self._checked = now
        try:
            st = self.path.resolve().stat()
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            if stamp != self._stamp:
                self._tokens = parse_tokens(self.path.read_text(), str(self.path))
                self._stamp, self.last_error = stamp, None
        except (OSError, ValueError, yaml.YAMLError) as exc:
            # Keep the last good set (a half-written Secret update must not lock everyone
            # out); with none, every call is refused.
            self.last_error = str(exc)
            log.error("caller tokens file: %s", exc)
        return self._tokens

    def identify(self, headers: Mapping[str, str], remote: str | None) -> str:
        """The verified caller name, or :class:`CallerRefused`."""
        claimed = headers.get(CALLER_HEADER)
        authorization = headers.get("Authorization")
        if claimed is not None:
            claimed = claimed[:253]
        if self.path is None:
            if not _loopback(remote):
                raise CallerRefused(
                    403,
                    "local_only",
                    "this gateway has no callerTokensFile: only callers on its own host "
                    "(loopback) are served",
                )
            if claimed is not None or authorization is not None:
                raise CallerRefused(
                    401,
                    "unverifiable_caller",
                    "this gateway has no callerTokensFile, so it cannot verify who is "
                    "calling; send no caller identity (everyone here is 'local')",
                    CALLER_HEADER if claimed is not None else "Authorization",
                )
            return LOCAL
        challenge = {"WWW-Authenticate": 'Bearer realm="trustspace-gateway"'}
        if authorization is None:
            raise CallerRefused(
                401,
                "missing_credentials",
                "send Authorization: Bearer <token> (a token listed in the gateway's "
                "callerTokensFile)",
                "Authorization",
                headers=challenge,
            )
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise CallerRefused(
                401,
                "malformed_credentials",
                "Authorization must be 'Bearer <token>'",
                "Authorization",
                headers=challenge,
            )
        digest = sm3(token.encode()).hex()
        tokens = self._refresh(force=False)
        name = (tokens or {}).get(digest)
        if name is None:
            tokens = self._refresh(force=True)  # a token added since the last check
            name = (tokens or {}).get(digest)
        if name is None:
            if tokens is None:
                raise CallerRefused(
                    503,
                    "caller_registry_unavailable",
                    f"caller tokens cannot be read: {self.last_error}",
                )
            raise CallerRefused(
                401,
                "unknown_caller",
                "no caller holds this token (revoked, or never issued)",
                "Authorization",
                headers=challenge,
            )
        if claimed is not None and claimed != name:
            raise CallerRefused(
                403,
                "caller_mismatch",
                f"the token belongs to {name!r}, not {claimed!r}",
                CALLER_HEADER,
            )
        return name
