from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustspace.audit import merkle
from trustspace.crypto import sm3


def _reference_root(data: list[bytes]) -> bytes:
    # RFC 9162 2.1.1, literally.
    if not data:
        return sm3(b"")
    if len(data) == 1:
        return sm3(b"\x00" + data[0])
    k = 1
    while k * 2 < len(data):
        k *= 2
    return sm3(b"\x01" + _reference_root(data[:k]) + _reference_root(data[k:]))


@given(st.lists(st.binary(max_size=8), max_size=70))
def test_root_matches_rfc_definition(data: list[bytes]) -> None:
    assert merkle.root(data) == _reference_root(data)


@settings(max_examples=60)
@given(st.integers(1, 80), st.data())
def test_every_inclusion_proof_verifies_and_any_change_fails(n: int, draw: st.DataObject) -> None:
    hashes = [merkle.leaf_hash(i.to_bytes(2, "big")) for i in range(n)]
    root = merkle.root_from_hashes(hashes)
    i = draw.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_proof(hashes, i)
    merkle.verify_inclusion(hashes[i], i, n, proof, root)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(merkle.leaf_hash(b"other"), i, n, proof, root)
    if n > 1:
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(hashes[i], (i + 1) % n, n, proof, root)
    if proof:
        j = draw.draw(st.integers(0, len(proof) - 1))
        bad = [*proof]
        bad[j] = sm3(bad[j])
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(hashes[i], i, n, bad, root)
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(hashes[i], i, n, proof[:-1], root)
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(hashes[i], i, n, [*proof, proof[0]], root)


@settings(max_examples=60)
@given(st.integers(1, 80), st.data())
def test_every_consistency_proof_verifies_and_any_change_fails(n: int, draw: st.DataObject) -> None:
    hashes = [merkle.leaf_hash(i.to_bytes(2, "big")) for i in range(n)]
    m = draw.draw(st.integers(0, n))
    old, new = merkle.root_from_hashes(hashes[:m]), merkle.root_from_hashes(hashes)
    proof = merkle.consistency_proof(hashes, m)
    merkle.verify_consistency(m, n, old, new, proof)
    if 0 < m < n:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(m, n, sm3(old), new, proof)
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(m, n, old, sm3(new), proof)
        j = draw.draw(st.integers(0, len(proof) - 1))
        bad = [*proof]
        bad[j] = sm3(bad[j])
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(m, n, old, new, bad)
        # A tree whose first m leaves differ is not consistent.
        forked = [merkle.leaf_hash(b"x"), *hashes[1:]]
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(m, n, merkle.root_from_hashes(forked[:m]), new, proof)


def test_compact_range_equals_full_root_at_every_size() -> None:
    compact = merkle.CompactRange()
    hashes: list[bytes] = []
    for i in range(300):
        h = merkle.leaf_hash(str(i).encode())
        hashes.append(h)
        compact.append(h)
        assert compact.root() == merkle.root_from_hashes(hashes)
