"""The policy bundle a gateway enforces, read from a mounted file and re-read when it changes.

A bundle counts only if a hub key signed it: the pinned hub key, or its endorsed successor
that signed the current trust bundle. A new file that does not verify, or that goes
back to an older version, is logged and ignored: the last good engine stays in force.
Without any good bundle the gateway denies everything (the engine is None).
"""

from __future__ import annotations

import logging
from pathlib import Path

from trustspace.crypto import SM2PublicKey
from trustspace.policy import BundleError, PolicyBundle, PolicyEngine
from trustspace.trust import TrustBundleFile, TrustError, hub_key_for

log = logging.getLogger(__name__)


class PolicyFile:
    def __init__(self, path: Path, trust: TrustBundleFile, pinned: SM2PublicKey) -> None:
        self._path = path
        self._trust = trust
        self._pinned = pinned
        self._stamp: tuple[int, int, int] | None = None
        self.engine: PolicyEngine | None = None
        self.last_error: str | None = None
        self.current()

    def hub_keys(self) -> dict[str, SM2PublicKey]:
        """The pinned key and the current hub key (the trust bundle's signer, reached from the
        pinned key through endorsements). Node keys never sign policy."""
        keys = {self._pinned.key_id: self._pinned}
        try:
            current = hub_key_for(self._trust.current(), self._pinned)
        except (TrustError, OSError) as exc:
            log.error("trust bundle unavailable: %s", exc)
            return keys
        keys[current.key_id] = current
        return keys

    def current(self) -> PolicyEngine | None:
        try:
            st = self._path.resolve().stat()
        except OSError as exc:
            self.last_error = f"policy bundle {self._path}: {exc.strerror}"
            return self.engine
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp == self._stamp:
            return self.engine
        self._stamp = stamp
        try:
            bundle = PolicyBundle.open_envelope(self._path.read_bytes(), self.hub_keys())
            if self.engine is not None and bundle.version < self.engine.bundle.version:
                raise BundleError(
                    f"version {bundle.version} is older than {self.engine.bundle.version}"
                )
        except (BundleError, OSError) as exc:
            self.last_error = f"ignoring policy bundle {self._path}: {exc}"
            log.error("%s", self.last_error)
            return self.engine
        if self.engine is None or bundle.hash != self.engine.bundle.hash:
            log.info("policy bundle version %d (%s) in force", bundle.version, bundle.hash[:12])
            self.engine = PolicyEngine(bundle)
        self.last_error = None
        return self.engine
