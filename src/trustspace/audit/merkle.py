"""Merkle trees in the style of RFC 9162 (Certificate Transparency 2.0), with SM3.

``leaf = SM3(0x00 || data)``, ``node = SM3(0x01 || left || right)``; the tree over n leaves
splits at k, the largest power of two smaller than n (RFC 9162 section 2.1.1). Inclusion and
consistency proofs and their verification follow sections 2.1.3 and 2.1.4 exactly, so the
algorithms can be checked against the RFC text; only the hash function differs.

:class:`CompactRange` keeps the right edge of a growing tree (one hash per set bit of the
size) so the hub computes the root of a log of millions of entries without re-reading it.
"""

from __future__ import annotations

from collections.abc import Sequence

from trustspace.crypto import sm3

EMPTY_ROOT = sm3(b"")
"""RFC 9162: the hash of an empty tree is the hash of the empty string."""


class ProofError(ValueError):
    """A proof that does not verify, or a request for an impossible proof."""


def leaf_hash(data: bytes) -> bytes:
    return sm3(b"\x00" + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sm3(b"\x01" + left + right)


def _split(n: int) -> int:
    """Largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_hashes(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf *hashes* (already ``leaf_hash``-ed)."""
    if not leaves:
        return EMPTY_ROOT
    compact = CompactRange()
    for h in leaves:
        compact.append(h)
    return compact.root()


def root(data: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over raw leaf data."""
    return root_from_hashes([leaf_hash(d) for d in data])


def _subtree(hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    return root_from_hashes(hashes[lo:hi])


def inclusion_proof(hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(m, D[n]) (RFC 9162 2.1.3.1) for leaf ``index`` among leaf hashes ``hashes``."""
    n = len(hashes)
    if not 0 <= index < n:
        raise ProofError(f"leaf index {index} outside tree of size {n}")
    return _path(hashes, index, 0, n)


def _path(hashes: Sequence[bytes], m: int, lo: int, hi: int) -> list[bytes]:
    n = hi - lo
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(hashes, m, lo, lo + k), _subtree(hashes, lo + k, hi)]
    return [*_path(hashes, m - k, lo + k, hi), _subtree(hashes, lo, lo + k)]


def consistency_proof(hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(m, D[n]) (RFC 9162 2.1.4.1): the tree of ``old_size`` is a prefix of this one."""
    n = len(hashes)
    if not 0 <= old_size <= n:
        raise ProofError(f"old size {old_size} outside tree of size {n}")
    if old_size in (0, n):
        return []
    return _subproof(hashes, old_size, 0, n, True)


def _subproof(hashes: Sequence[bytes], m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
    n = hi - lo
    if m == n:
        return [] if complete else [_subtree(hashes, lo, hi)]
    k = _split(n)
    if m <= k:
        return [*_subproof(hashes, m, lo, lo + k, complete), _subtree(hashes, lo + k, hi)]
    return [*_subproof(hashes, m - k, lo + k, hi, False), _subtree(hashes, lo, lo + k)]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes
) -> None:
    """RFC 9162 2.1.3.2 with ``leaf`` the leaf *hash*; raise :class:`ProofError` on failure."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} outside tree of size {size}")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    if r != expected_root:
        raise ProofError("inclusion proof does not lead to the expected root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 2.1.4.2; raise :class:`ProofError` unless the old tree is a prefix of the new."""
    if not 0 <= old_size <= new_size:
        raise ProofError(f"old size {old_size} larger than new size {new_size}")
    if old_size == new_size:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError("same size, different roots")
        return
    if old_size == 0:
        if proof:
            raise ProofError("consistency proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # exact power of two: the old root is the first node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != old_root:
        raise ProofError("consistency proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("consistency proof does not lead to the new root")


class CompactRange:
    """The perfect subtrees on the right edge of a tree: enough to append and to get the root."""

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        self._stack: list[bytes] = []  # roots of perfect subtrees, largest first
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf: bytes) -> None:
        """Append a leaf *hash*."""
        h = leaf
        size = self._size
        while size & 1:
            h = node_hash(self._stack.pop(), h)
            size >>= 1
        self._stack.append(h)
        self._size += 1

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        acc = self._stack[-1]
        for h in reversed(self._stack[:-1]):
            acc = node_hash(h, acc)
        return acc
