from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from trustspace.crypto import SM2PrivateKey
from trustspace.trust import (
    NodeKey,
    SignedTrustBundle,
    TrustBundleFile,
    TrustedNode,
    TrustError,
    build_bundle,
    endorse,
    sign_bundle,
    verify_bundle,
)

NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
HUB1, HUB2, HUB3 = (SM2PrivateKey.generate() for _ in range(3))
OLD, NEW = SM2PrivateKey.generate(), SM2PrivateKey.generate()


def _nodes() -> list[TrustedNode]:
    return [
        TrustedNode(
            name="edge-vn",
            role="edge",
            jurisdiction="VN",
            keys=[
                NodeKey.of(NEW.public_key(), NOW - dt.timedelta(days=1)),
                NodeKey.of(
                    OLD.public_key(), NOW - dt.timedelta(days=90), NOW + dt.timedelta(hours=1)
                ),
            ],
        )
    ]


def test_sign_verify_and_key_lookup_with_validity_windows() -> None:
    signed = sign_bundle(build_bundle(_nodes(), serial=1, hub_key_id=HUB1.key_id), HUB1)
    bundle = verify_bundle(SignedTrustBundle.from_json(signed.to_json()), HUB1.public_key())
    assert bundle.node_key("edge-vn", NEW.key_id, NOW) == NEW.public_key()
    assert bundle.node_key("edge-vn", OLD.key_id, NOW) == OLD.public_key()  # in grace
    with pytest.raises(TrustError, match="key_retired"):
        bundle.node_key("edge-vn", OLD.key_id, NOW + dt.timedelta(hours=2))
    with pytest.raises(TrustError, match="key_not_yet_valid"):
        bundle.node_key("edge-vn", NEW.key_id, NOW - dt.timedelta(days=2))
    with pytest.raises(TrustError, match="unknown_key"):
        bundle.node_key("edge-vn", HUB1.key_id, NOW)
    with pytest.raises(TrustError, match="unknown_node"):
        bundle.node_key("edge-la", NEW.key_id, NOW)
    with pytest.raises(TrustError, match="bad_signature"):
        verify_bundle(
            signed.model_copy(update={"bundle": signed.bundle.model_copy(update={"serial": 2})}),
            HUB1.public_key(),
        )
    with pytest.raises(TrustError, match="untrusted_hub_key"):
        verify_bundle(signed, HUB2.public_key())


def test_hub_rotation_chain_is_followed_from_the_pinned_key() -> None:
    chain = [endorse(HUB1, HUB2.public_key()), endorse(HUB2, HUB3.public_key())]
    signed = sign_bundle(
        build_bundle(_nodes(), serial=5, hub_key_id=HUB3.key_id, endorsements=chain), HUB3
    )
    assert verify_bundle(signed, HUB1.public_key()).serial == 5
    assert verify_bundle(signed, HUB2.public_key()).serial == 5
    forged = endorse(SM2PrivateKey.generate(), HUB3.public_key()).model_copy(
        update={"previous_key_id": HUB2.key_id}
    )
    bad = sign_bundle(
        build_bundle(_nodes(), serial=5, hub_key_id=HUB3.key_id, endorsements=[chain[0], forged]),
        HUB3,
    )
    with pytest.raises(TrustError, match="bad_signature"):
        verify_bundle(bad, HUB1.public_key())


def test_bundle_file_reloads_and_refuses_bad_or_older_bundles(tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"

    def write(serial: int, key: SM2PrivateKey = HUB1) -> None:
        tmp = tmp_path / "new"
        tmp.write_text(
            sign_bundle(build_bundle(_nodes(), serial=serial, hub_key_id=key.key_id), key).to_json()
        )
        tmp.replace(path)

    write(3)
    f = TrustBundleFile(path, HUB1.public_key())
    assert f.current().serial == 3
    write(4)
    assert f.current().serial == 4
    write(2)  # rollback: ignored
    assert f.current().serial == 4
    write(9, HUB2)  # not trusted: ignored
    assert f.current().serial == 4
    path.write_text("{garbage")
    assert f.current().serial == 4
