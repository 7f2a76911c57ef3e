"""The batch wire format on its own: what the manifest binds."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from trustspace.crypto import sm3
from trustspace_agent.gateway.batchwire import MAX_FRAMES, encode_batch, open_batch
from trustspace_agent.gateway.envelope import EnvelopeError


def test_round_trip() -> None:
    frames = [b"TSX1-a", b"", b"TSX1-ccc"]
    manifest, body = encode_batch(frames)
    batch = open_batch(body)
    assert batch.frames == frames and batch.manifest == manifest
    assert batch.digests == [sm3(f).hex() for f in frames]
    assert json.loads(manifest)["frames"][2] == {"digest": sm3(b"TSX1-ccc").hex(), "size": 8}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b[:-1] + b"x", "batch"),  # a frame altered
        (lambda b: b + b"x", "batch"),  # bytes after the last frame
        (lambda b: b[:-1], "batch"),  # the last frame cut short
        (lambda b: b"TSB2" + b[4:], "batch"),  # not a batch
        (lambda b: b[:4] + b"\xff\xff\xff\xff" + b[8:], "manifest"),  # manifest length
    ],
)
def test_anything_the_manifest_does_not_list_is_refused(
    mutate: Callable[[bytes], bytes], field: str
) -> None:
    _, body = encode_batch([b"TSX1-a", b"TSX1-b"])
    with pytest.raises(EnvelopeError) as err:
        open_batch(mutate(body))
    assert err.value.field == field


def test_manifest_must_be_canonical_and_bounded() -> None:
    manifest, body = encode_batch([b"TSX1-a"])
    spaced = json.dumps(json.loads(manifest), indent=1).encode()
    forged = body[:4] + len(spaced).to_bytes(4, "big") + spaced + b"TSX1-a"
    with pytest.raises(EnvelopeError, match="canonical"):
        open_batch(forged)
    _, big = encode_batch([b""] * (MAX_FRAMES + 1))
    with pytest.raises(EnvelopeError, match="wrong shape"):
        open_batch(big)
