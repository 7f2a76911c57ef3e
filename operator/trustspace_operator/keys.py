"""The SM2 key lifecycle of one node, kept in the node's key Secret (B3).

The Secret in the cluster where the node runs is the only home of the private key and the
single source of truth for the key state; status is recomputed from it. Every step is one
write with the Secret's resourceVersion as precondition, in the manner of cert-manager
(which stores the next private key before it issues):

1. issue    — create the Secret with the first key (create is atomic; a lost race re-reads);
2. stage    — write the next private key beside the active one, so a crash can only leave a
              staged key behind, never lose one, and the next run promotes that same key;
3. promote  — one update turns next into active and active into previous (with retireAt),
              bumps the revision and records which rotation request it answers;
4. retire   — drop previous keys whose grace period is over.

A kill between any two steps leaves a Secret one of the steps accepts as input.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from trustspace import clock, trust
from trustspace.api.constants import GROUP
from trustspace.api.dataspacenode import MAX_PREVIOUS_KEYS
from trustspace.crypto import SM2PrivateKey, sm3
from trustspace.kube import Conflict, Kube, Obj
from trustspace.kube import kinds as k
from trustspace_operator.faults import fault_point

SECRET_TYPE = f"{GROUP}/sm2-key"
ACTIVE_KEY = "key.pem"
ACTIVE_PUB = "pub.pem"
NEXT_KEY = "next.pem"
_A = f"{GROUP}/"
ANN_KEY_ID = _A + "key-id"
ANN_NOT_BEFORE = _A + "not-before"
ANN_ROTATED_AT = _A + "rotated-at"
ANN_REVISION = _A + "key-revision"
ANN_NEXT = _A + "next-key"
ANN_PREVIOUS = _A + "previous-keys"
ANN_HANDLED = _A + "rotation-request-handled"
ANN_ENDORSEMENTS = _A + "hub-endorsements"
#: Endorsements kept on the hub's key Secret: enough for agents that missed a few rotations.
MAX_ENDORSEMENTS = 8


def parse_ts(s: str) -> dt.datetime:
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class PublicKeyInfo:
    """The public half of a key: safe for status, events and the trust bundle."""

    key_id: str
    public_pem: str

    @classmethod
    def of(cls, key: SM2PrivateKey) -> PublicKeyInfo:
        public = key.public_key()
        return cls(public.key_id, public.to_pem().decode())


@dataclass(frozen=True)
class RetiringKey:
    key_id: str
    public_pem: str
    retire_at: dt.datetime

    def to_json(self) -> dict[str, str]:
        return {
            "keyId": self.key_id,
            "publicKey": self.public_pem,
            "retireAt": clock.rfc3339(self.retire_at),
        }

    @classmethod
    def from_json(cls, doc: dict[str, str]) -> RetiringKey:
        return cls(doc["keyId"], doc["publicKey"], parse_ts(doc["retireAt"]))


@dataclass(frozen=True)
class StagedKey:
    key_id: str
    public_pem: str
    staged_at: dt.datetime


@dataclass
class KeyState:
    """The non-secret view of a key Secret."""

    active: PublicKeyInfo
    not_before: dt.datetime
    rotated_at: dt.datetime | None
    revision: int
    staged: StagedKey | None = None
    previous: list[RetiringKey] = field(default_factory=list)
    handled_request: str | None = None


class KeySecretCorrupt(Exception):
    """The key Secret exists but cannot be read as one; a human must look (never overwritten)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(secret: Obj, key: str) -> bytes:
    try:
        return base64.b64decode(secret.get("data", {})[key])
    except (KeyError, ValueError) as exc:
        raise KeySecretCorrupt(f"Secret lacks a valid {key}") from exc


_STATE_CACHE: dict[tuple[str, str], tuple[str, KeyState]] = {}
_STATE_CACHE_MAX = 20_000


def read_state(secret: Obj) -> KeyState:
    """Parse the public facts of a key Secret (checks that they match the private keys).

    Parsing a private key derives its public point, which costs as much as a signature;
    a Secret version is immutable, so its state is computed once per resourceVersion.
    """
    meta = secret.get("metadata", {})
    version = meta.get("resourceVersion")
    cache_key = (str(meta.get("namespace")), str(meta.get("name")))
    if version:
        cached = _STATE_CACHE.get(cache_key)
        if cached is not None and cached[0] == version:
            return cached[1]
    state = _read_state(secret)
    if version:
        if len(_STATE_CACHE) >= _STATE_CACHE_MAX:
            _STATE_CACHE.clear()
        _STATE_CACHE[cache_key] = (str(version), state)
    return state


#: Public halves by the SM3 digest of the private key's Secret data (never the key itself):
#: a staged key becomes the active one unchanged, so each key is parsed once, not per step.
_PUBLIC_CACHE: dict[bytes, PublicKeyInfo] = {}


def _public_of(secret: Obj, field_name: str) -> PublicKeyInfo:
    raw = (secret.get("data") or {}).get(field_name)
    digest = sm3(raw.encode()) if isinstance(raw, str) else None
    if digest is not None and digest in _PUBLIC_CACHE:
        return _PUBLIC_CACHE[digest]
    info = PublicKeyInfo.of(SM2PrivateKey.from_pem(_unb64(secret, field_name)))
    if digest is not None:
        _remember_public(digest, info)
    return info


def _remember_public(digest: bytes, info: PublicKeyInfo) -> None:
    if len(_PUBLIC_CACHE) >= _STATE_CACHE_MAX:
        _PUBLIC_CACHE.clear()
    _PUBLIC_CACHE[digest] = info


def _encoded_key(key: SM2PrivateKey) -> tuple[str, PublicKeyInfo]:
    """A new key as Secret data, its public half remembered for the reads that follow."""
    data = _b64(key.to_pem())
    info = PublicKeyInfo.of(key)
    _remember_public(sm3(data.encode()), info)
    return data, info


def _read_state(secret: Obj) -> KeyState:
    ann = secret.get("metadata", {}).get("annotations", {}) or {}
    try:
        info = _public_of(secret, ACTIVE_KEY)
    except Exception as exc:
        raise KeySecretCorrupt(f"active key unreadable: {type(exc).__name__}") from None
    if ann.get(ANN_KEY_ID) not in (None, info.key_id):
        raise KeySecretCorrupt("key-id annotation does not match the active private key")
    staged = None
    if NEXT_KEY in secret.get("data", {}):
        try:
            nxt = _public_of(secret, NEXT_KEY)
        except Exception as exc:
            raise KeySecretCorrupt(f"staged key unreadable: {type(exc).__name__}") from None
        staged_at = ann.get(ANN_NEXT)
        staged = StagedKey(
            nxt.key_id,
            nxt.public_pem,
            parse_ts(staged_at) if staged_at else clock.now(),
        )
    try:
        previous = [RetiringKey.from_json(d) for d in json.loads(ann.get(ANN_PREVIOUS, "[]"))]
        not_before = parse_ts(ann[ANN_NOT_BEFORE])
        rotated = ann.get(ANN_ROTATED_AT)
        revision = int(ann.get(ANN_REVISION, "1"))
    except (KeyError, ValueError, TypeError) as exc:
        raise KeySecretCorrupt(f"key annotations unreadable: {exc}") from None
    return KeyState(
        active=info,
        not_before=not_before,
        rotated_at=parse_ts(rotated) if rotated else None,
        revision=revision,
        staged=staged,
        previous=previous,
        handled_request=ann.get(ANN_HANDLED),
    )


def _previous_json(previous: list[RetiringKey]) -> str:
    return json.dumps([p.to_json() for p in previous], separators=(",", ":"))


def new_secret(
    name: str,
    namespace: str,
    labels: dict[str, str],
    now: dt.datetime,
    extra_meta: Obj | None = None,
) -> Obj:
    data, info = _encoded_key(SM2PrivateKey.generate())
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": labels,
        "annotations": {
            ANN_KEY_ID: info.key_id,
            ANN_NOT_BEFORE: clock.rfc3339(now),
            ANN_REVISION: "1",
            ANN_PREVIOUS: "[]",
        },
    }
    if extra_meta:
        meta.update(extra_meta)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": SECRET_TYPE,
        "metadata": meta,
        "data": {ACTIVE_KEY: data, ACTIVE_PUB: _b64(info.public_pem.encode())},
    }


def ensure_secret(
    kube: Kube,
    name: str,
    namespace: str,
    labels: dict[str, str],
    now: dt.datetime,
    extra_meta: Obj | None = None,
    *,
    likely_missing: bool = False,
) -> tuple[Obj, bool]:
    """The node's key Secret, created with a first key if missing. Returns (secret, issued).

    `likely_missing` (a node never provisioned) tries the create first and reads only when
    it already exists, saving a round trip per new node.
    """
    if not likely_missing:
        secret = kube.get(k.SECRET, name, namespace)
        if secret is not None:
            return secret, False
    fault_point("before-issue")
    try:
        created = kube.create(new_secret(name, namespace, labels, now, extra_meta))
    except Conflict:  # created by a peer (or by us before a crash) since the read
        again = kube.get(k.SECRET, name, namespace)
        if again is None:
            raise
        return again, False
    fault_point("after-issue")
    return created, True


def stage_next(kube: Kube, secret: Obj, now: dt.datetime) -> Obj:
    """Store the next private key beside the active one (no-op when one is staged)."""
    if NEXT_KEY in secret.get("data", {}):
        return secret
    fault_point("before-stage")
    data, _ = _encoded_key(SM2PrivateKey.generate())
    updated = json.loads(json.dumps(secret))
    updated["data"][NEXT_KEY] = data
    updated["metadata"].setdefault("annotations", {})[ANN_NEXT] = clock.rfc3339(now)
    result = kube.replace(updated)
    fault_point("after-stage")
    return result


def promote(
    kube: Kube,
    secret: Obj,
    now: dt.datetime,
    grace: dt.timedelta,
    request: str | None,
    *,
    endorse_successor: bool = False,
) -> Obj:
    """Make the staged key active; the old active key verifies until now + grace.

    For the hub, the outgoing key also signs an endorsement of its successor in the same
    write, while its private half still exists: agents follow that chain from the hub key
    they trust to the one that signs the next trust bundle.
    """
    state = read_state(secret)
    if state.staged is None:
        raise ValueError("promote needs a staged key")
    retiring = RetiringKey(state.active.key_id, state.active.public_pem, now + grace)
    previous = [retiring, *(p for p in state.previous if p.retire_at > now)]
    previous = previous[:MAX_PREVIOUS_KEYS]
    updated = json.loads(json.dumps(secret))
    data = updated["data"]
    data[ACTIVE_KEY] = data.pop(NEXT_KEY)
    data[ACTIVE_PUB] = _b64(state.staged.public_pem.encode())
    ann = updated["metadata"]["annotations"]
    ann.pop(ANN_NEXT, None)
    ann[ANN_KEY_ID] = state.staged.key_id
    ann[ANN_NOT_BEFORE] = clock.rfc3339(now)
    ann[ANN_ROTATED_AT] = clock.rfc3339(now)
    ann[ANN_REVISION] = str(state.revision + 1)
    ann[ANN_PREVIOUS] = _previous_json(previous)
    if request is not None:
        ann[ANN_HANDLED] = request
    if endorse_successor:
        outgoing = SM2PrivateKey.from_pem(_unb64(secret, ACTIVE_KEY))
        successor = SM2PrivateKey.from_pem(base64.b64decode(data[ACTIVE_KEY])).public_key()
        chain = json.loads(ann.get(ANN_ENDORSEMENTS, "[]"))
        chain.append(trust.endorse(outgoing, successor, issued_at=now).to_dict())
        ann[ANN_ENDORSEMENTS] = json.dumps(chain[-MAX_ENDORSEMENTS:], separators=(",", ":"))
    fault_point("before-promote")
    result = kube.replace(updated)
    fault_point("after-promote")
    return result


def endorsements(secret: Obj) -> list[trust.Endorsement]:
    ann = secret.get("metadata", {}).get("annotations", {}) or {}
    try:
        return [
            trust.Endorsement.model_validate(e) for e in json.loads(ann.get(ANN_ENDORSEMENTS, "[]"))
        ]
    except (ValueError, TypeError) as exc:
        raise KeySecretCorrupt(f"hub endorsements unreadable: {exc}") from None


def active_private_key(secret: Obj) -> SM2PrivateKey:
    """The signing key; only the trust-bundle signer (the hub's own Secret) needs this."""
    return SM2PrivateKey.from_pem(_unb64(secret, ACTIVE_KEY))


def retire_expired(kube: Kube, secret: Obj, now: dt.datetime) -> Obj:
    state = read_state(secret)
    keep = [p for p in state.previous if p.retire_at > now]
    if len(keep) == len(state.previous):
        return secret
    updated = json.loads(json.dumps(secret))
    updated["metadata"]["annotations"][ANN_PREVIOUS] = _previous_json(keep)
    return kube.replace(updated)
