"""An SM2 private key read from a mounted file (a Kubernetes Secret), re-read when it changes.

The operator rotates a node's key by updating its Secret; the kubelet swaps the mounted file.
Callers ask :meth:`KeyFile.get` whenever they sign, which costs one ``stat``. A file that no
longer parses keeps the previous key in use (and is logged without its content).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from trustspace.crypto import CryptoError, SM2PrivateKey

log = logging.getLogger(__name__)


class KeyFile:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._stamp: tuple[int, int, int] | None = None
        self._key: SM2PrivateKey | None = None
        self.get()

    def get(self) -> SM2PrivateKey:
        st = self._path.resolve().stat()
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp != self._stamp or self._key is None:
            try:
                key = SM2PrivateKey.from_pem(self._path.read_bytes())
            except (CryptoError, ValueError) as exc:
                if self._key is None:
                    raise
                # The exception text never contains key material (see trustspace.crypto).
                log.error(
                    "key file %s unreadable, keeping key %s: %s",
                    self._path,
                    self._key.key_id[:16],
                    type(exc).__name__,
                )
            else:
                if self._key is None or key.key_id != self._key.key_id:
                    log.info("signing key %s loaded from %s", key.key_id[:16], self._path)
                self._key = key
            self._stamp = stamp
        assert self._key is not None
        return self._key
