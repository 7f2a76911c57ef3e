"""The trust bundle: which SM2 keys speak for which node, signed by the hub.

The operator builds the bundle from the DataSpaceNode resources (every node's active and
still-in-grace keys, with validity windows) and ships it to agents in a ConfigMap; the
collector and agents read it from that mounted file with :class:`TrustBundleFile`, which
reloads it when the file changes and keeps the last good bundle when a new one is bad.

Trust starts from one pinned hub public key. When the hub key rotates, the new key is
accepted because the previous key signed an :class:`Endorsement` of it; endorsements chain,
so a verifier pinned to any earlier hub key follows the chain forward.

Typical use (operator)::

    bundle = build_bundle(nodes, serial=7, hub_key_id=hub.key_id)
    text = sign_bundle(bundle, hub).to_json()          # into the ConfigMap

and (collector)::

    trust = TrustBundleFile(path, pinned_hub_key)
    key = trust.current().node_key("edge-my", key_id, at=now)   # raises TrustError
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trustspace import clock
from trustspace.audit.canonical import canonical_json
from trustspace.audit.errors import AuditError
from trustspace.crypto import InvalidSignature, SM2PrivateKey, SM2PublicKey

log = logging.getLogger(__name__)

BUNDLE_API_VERSION = "trustspace.io/trust-bundle/v1"


class TrustError(AuditError):
    """A key or bundle that is not trusted; ``code`` says why."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class NodeKey(_Model):
    """One SM2 public key of a node, valid from ``notBefore`` until ``retireAt`` (exclusive)."""

    key_id: str = Field(alias="keyId")
    public_key: str = Field(alias="publicKey")
    """PEM SubjectPublicKeyInfo."""
    not_before: str = Field(alias="notBefore")
    retire_at: str | None = Field(default=None, alias="retireAt")
    """Empty for the active key; set to rotation time + grace for previous keys."""

    @classmethod
    def of(
        cls, key: SM2PublicKey, not_before: dt.datetime, retire_at: dt.datetime | None = None
    ) -> NodeKey:
        return cls(
            keyId=key.key_id,
            publicKey=key.to_pem().decode(),
            notBefore=clock.rfc3339(not_before),
            retireAt=clock.rfc3339(retire_at) if retire_at else None,
        )

    def valid_at(self, at: dt.datetime) -> bool:
        if at < clock.parse(self.not_before):
            return False
        return self.retire_at is None or at < clock.parse(self.retire_at)


class TrustedNode(_Model):
    name: str
    role: Literal["hub", "edge"]
    jurisdiction: str
    keys: list[NodeKey]


class Endorsement(_Model):
    """The hub key ``previousKeyId`` vouches for its successor ``keyId``."""

    previous_key_id: str = Field(alias="previousKeyId")
    key_id: str = Field(alias="keyId")
    public_key: str = Field(alias="publicKey")
    issued_at: str = Field(alias="issuedAt")
    signature: str
    """base64 SM2 signature by the previous key over the canonical JSON of the other fields."""

    def signed_part(self) -> bytes:
        d = self.to_dict()
        del d["signature"]
        return canonical_json(d)


class TrustBundle(_Model):
    api_version: Annotated[str, Field(alias="apiVersion")] = BUNDLE_API_VERSION
    serial: Annotated[int, Field(ge=1)]
    """Increases with every bundle the hub issues; verifiers refuse to go back."""
    issued_at: str = Field(alias="issuedAt")
    hub_key_id: str = Field(alias="hubKeyId")
    nodes: list[TrustedNode]
    endorsements: list[Endorsement] = Field(default_factory=list)

    def canonical(self) -> bytes:
        return canonical_json(self.to_dict())

    def node(self, name: str) -> TrustedNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise TrustError("unknown_node", f"node {name!r} is not in trust bundle {self.serial}")

    def node_key(self, node: str, key_id: str, at: dt.datetime | None = None) -> SM2PublicKey:
        """The public key ``key_id`` of ``node`` if it is valid at ``at`` (default now)."""
        at = at or clock.now()
        for key in self.node(node).keys:
            if key.key_id != key_id:
                continue
            if at < clock.parse(key.not_before):
                raise TrustError(
                    "key_not_yet_valid", f"key {key_id[:16]} of {node!r} not yet valid"
                )
            if key.retire_at is not None and at >= clock.parse(key.retire_at):
                raise TrustError(
                    "key_retired", f"key {key_id[:16]} of {node!r} retired at {key.retire_at}"
                )
            public = _public_key(key.public_key)
            if public.key_id != key_id:
                raise TrustError("bad_bundle", f"key id {key_id[:16]} does not match its PEM")
            return public
        raise TrustError("unknown_key", f"key {key_id[:16]} is not a key of node {node!r}")


@functools.lru_cache(maxsize=1024)
def _public_key(pem: str) -> SM2PublicKey:
    # The collector looks a node's key up twice per audit batch (request signature, batch
    # signature); parsing the PEM, checking the point and loading it into OpenSSL each time
    # cost more than the verification. Keys are immutable, so one object per PEM is shared.
    return SM2PublicKey.from_pem(pem)


class SignedTrustBundle(_Model):
    bundle: TrustBundle
    signature: str

    def to_json(self) -> str:
        return canonical_json(self.to_dict()).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> SignedTrustBundle:
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise TrustError("bad_bundle", f"trust bundle does not parse: {exc}") from None


def build_bundle(
    nodes: Iterable[TrustedNode],
    *,
    serial: int,
    hub_key_id: str,
    endorsements: Iterable[Endorsement] = (),
    issued_at: dt.datetime | None = None,
) -> TrustBundle:
    return TrustBundle(
        serial=serial,
        issuedAt=clock.rfc3339(issued_at or clock.now()),
        hubKeyId=hub_key_id,
        nodes=list(nodes),
        endorsements=list(endorsements),
    )


def sign_bundle(bundle: TrustBundle, hub_key: SM2PrivateKey) -> SignedTrustBundle:
    if hub_key.key_id != bundle.hub_key_id:
        raise TrustError("bad_bundle", "the bundle names a different hub key than the signer")
    sig = hub_key.sign(bundle.canonical())
    return SignedTrustBundle(bundle=bundle, signature=base64.b64encode(sig).decode())


def endorse(
    previous: SM2PrivateKey, new: SM2PublicKey, issued_at: dt.datetime | None = None
) -> Endorsement:
    """``previous`` (the outgoing hub key) vouches for ``new`` (its successor)."""
    unsigned = Endorsement(
        previousKeyId=previous.key_id,
        keyId=new.key_id,
        publicKey=new.to_pem().decode(),
        issuedAt=clock.rfc3339(issued_at or clock.now()),
        signature="",
    )
    sig = previous.sign(unsigned.signed_part())
    return unsigned.model_copy(update={"signature": base64.b64encode(sig).decode()})


def _verify_b64(key: SM2PublicKey, data: bytes, signature: str, what: str) -> None:
    try:
        key.verify(data, base64.b64decode(signature, validate=True))
    except (InvalidSignature, binascii.Error, ValueError):
        raise TrustError("bad_signature", f"{what} signature does not verify") from None


def hub_key_for(bundle: TrustBundle, pinned: SM2PublicKey) -> SM2PublicKey:
    """Follow the endorsement chain from ``pinned`` to the key that signed ``bundle``."""
    current = pinned
    used: set[str] = set()
    while current.key_id != bundle.hub_key_id:
        step = next(
            (
                e
                for e in bundle.endorsements
                if e.previous_key_id == current.key_id and e.key_id not in used
            ),
            None,
        )
        if step is None:
            raise TrustError(
                "untrusted_hub_key",
                f"no endorsement chain from pinned key {pinned.key_id[:16]} "
                f"to bundle key {bundle.hub_key_id[:16]}",
            )
        _verify_b64(current, step.signed_part(), step.signature, "endorsement")
        successor = SM2PublicKey.from_pem(step.public_key)
        if successor.key_id != step.key_id:
            raise TrustError("bad_bundle", "endorsed key id does not match its PEM")
        used.add(step.key_id)
        current = successor
    return current


def verify_bundle(signed: SignedTrustBundle, pinned: SM2PublicKey) -> TrustBundle:
    """The bundle, if signed by ``pinned`` or by a key endorsed through a chain from it."""
    key = hub_key_for(signed.bundle, pinned)
    _verify_b64(key, signed.bundle.canonical(), signed.signature, "trust bundle")
    return signed.bundle


class TrustBundleFile:
    """A bundle read from a mounted file, re-read when the file changes.

    A ConfigMap update swaps a symlink, so the check stats the resolved path (inode, size,
    mtime) on every call; that is cheap enough to do per request. A new bundle that fails
    verification or has a lower serial is logged and ignored: the last good one stays.
    """

    def __init__(self, path: str | os.PathLike[str], pinned: SM2PublicKey) -> None:
        self._path = Path(path)
        self._pinned = pinned
        self._stamp: tuple[int, int, int] | None = None
        self._bundle: TrustBundle | None = None
        self.current()

    def _read_stamp(self) -> tuple[int, int, int]:
        st = self._path.resolve().stat()
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def current(self) -> TrustBundle:
        stamp = self._read_stamp()
        if stamp != self._stamp or self._bundle is None:
            try:
                signed = SignedTrustBundle.from_json(self._path.read_bytes())
                bundle = verify_bundle(signed, self._pinned)
                if self._bundle is not None and bundle.serial < self._bundle.serial:
                    raise TrustError(
                        "bundle_rollback",
                        f"serial {bundle.serial} is older than {self._bundle.serial}",
                    )
            except TrustError as exc:
                if self._bundle is None:
                    raise
                log.error("ignoring new trust bundle: %s", exc)
            else:
                if self._bundle is None or bundle.serial != self._bundle.serial:
                    log.info("trust bundle %d loaded", bundle.serial)
                self._bundle = bundle
            self._stamp = stamp
        assert self._bundle is not None
        return self._bundle
