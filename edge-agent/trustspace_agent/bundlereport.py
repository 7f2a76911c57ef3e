"""The SM3 hash of the trust bundle file the agent has mounted, for its heartbeats.

The hub can then tell which trust bundle a node holds (``trustBundleHash`` in the heartbeat;
the policy bundle in force is reported next to it as ``policyBundle``). The file is
re-hashed only when it changes (inode, size, mtime), so a heartbeat costs one ``stat``.
"""

from __future__ import annotations

from pathlib import Path

from trustspace.crypto import sm3


class TrustFileHash:
    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._stamp: tuple[int, int, int] | None = None
        self._hash: str | None = None

    def current(self) -> str | None:
        """Hex SM3 of the file's bytes; None without a file or when it cannot be read."""
        if self._path is None:
            return None
        try:
            st = self._path.resolve().stat()
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            if stamp != self._stamp:
                self._hash = sm3(self._path.read_bytes()).hex()
                self._stamp = stamp
        except OSError:
            self._stamp, self._hash = None, None
        return self._hash
