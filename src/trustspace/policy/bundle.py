"""The policy bundle: what the hub compiles and every node's gateway enforces.

One canonical JSON document (sorted keys, sorted lists, no whitespace), so the same
policies, nodes and profiles give byte-identical bytes whatever order they were read in.
Its SM3 digest is the bundle hash quoted in `TransferPolicy.status.bundle` and
`DataSpaceNode.status.policyBundle`; the hub's SM2 key signs exactly those bytes (B3).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trustspace.crypto import InvalidSignature, SM2PrivateKey, SM2PublicKey, sm3
from trustspace.policy.canonical import canonical_json, sm3_hex

BUNDLE_API_VERSION = "policy.trustspace.io/v1"
SIGNATURE_ALGORITHM = "SM2-with-SM3"


class BundleError(ValueError):
    """A bundle document is malformed or its signature does not verify."""


@dataclass(frozen=True)
class PolicyBundle:
    """An immutable compiled bundle. Build it with `compile_bundle`, ship `to_bytes()` or
    `signed_envelope()`, read it back with `from_bytes` / `open_envelope`."""

    data: Mapping[str, Any]
    canonical: bytes = field(init=False, repr=False)
    hash: str = field(init=False)
    """SM3 of the canonical bytes: what status fields and signatures refer to."""
    content_hash: str = field(init=False)
    """SM3 of everything but `version`: equal content hashes mean the operator need not
    publish a new version."""

    def __post_init__(self) -> None:
        if self.data.get("apiVersion") != BUNDLE_API_VERSION:
            raise BundleError(f"apiVersion must be {BUNDLE_API_VERSION}")
        version = self.data.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise BundleError("version must be an integer >= 1")
        canonical = canonical_json(self.data)
        object.__setattr__(self, "canonical", canonical)
        object.__setattr__(self, "hash", sm3(canonical).hex())
        content = {k: v for k, v in self.data.items() if k != "version"}
        object.__setattr__(self, "content_hash", sm3_hex(content))

    @property
    def version(self) -> int:
        return int(self.data["version"])

    @property
    def namespace(self) -> str:
        return str(self.data.get("namespace", ""))

    @property
    def nodes(self) -> Mapping[str, Mapping[str, Any]]:
        return self.data["nodes"]  # type: ignore[no-any-return]

    @property
    def policies(self) -> list[Mapping[str, Any]]:
        return self.data["policies"]  # type: ignore[no-any-return]

    @property
    def profiles(self) -> Mapping[str, Any]:
        return self.data["profiles"]  # type: ignore[no-any-return]

    def policy(self, name: str) -> Mapping[str, Any] | None:
        return next((p for p in self.policies if p["name"] == name), None)

    def circuit_breakers(self, policies: Iterable[str]) -> dict[str, Mapping[str, Any]]:
        """The circuit-breaker settings (B8) of the named policies, for the gateway."""
        out: dict[str, Mapping[str, Any]] = {}
        for name in policies:
            found = self.policy(name)
            if found is not None:
                out[name] = found.get("circuitBreaker", {})
        return out

    # --- bytes ------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        return self.canonical

    @classmethod
    def from_bytes(cls, data: bytes) -> PolicyBundle:
        try:
            parsed = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BundleError(f"not a JSON bundle: {exc}") from exc
        if not isinstance(parsed, dict):
            raise BundleError("a bundle is a JSON object")
        bundle = cls(parsed)
        if bundle.canonical != data:
            # A re-encoded bundle would hash differently from what the hub signed.
            raise BundleError("bundle bytes are not in canonical form")
        return bundle

    # --- signatures (B3) --------------------------------------------------------------------

    def sign(self, key: SM2PrivateKey) -> bytes:
        """DER SM2 signature over the canonical bytes."""
        return key.sign(self.canonical)

    def verify(self, signature: bytes, public_key: SM2PublicKey) -> None:
        """Raise `BundleError` unless `signature` is the key's signature of these bytes."""
        try:
            public_key.verify(self.canonical, signature)
        except InvalidSignature as exc:
            raise BundleError("bundle signature does not verify") from exc

    def signed_envelope(self, key: SM2PrivateKey) -> bytes:
        """`{bundle, signature}` as canonical JSON: what the hub ships to the nodes."""
        envelope = {
            "bundle": self.data,
            "signature": {
                "algorithm": SIGNATURE_ALGORITHM,
                "keyId": key.key_id,
                "value": base64.b64encode(self.sign(key)).decode("ascii"),
            },
        }
        return canonical_json(envelope)

    @classmethod
    def open_envelope(
        cls, data: bytes, trusted: Mapping[str, SM2PublicKey] | Iterable[SM2PublicKey]
    ) -> PolicyBundle:
        """Parse an envelope and verify its signature with one of the `trusted` hub keys
        (a mapping by key id, or keys whose ids are computed). Raises `BundleError`."""
        try:
            envelope = json.loads(data)
            body, sig = envelope["bundle"], envelope["signature"]
            key_id, value = str(sig["keyId"]), base64.b64decode(sig["value"], validate=True)
            algorithm = sig["algorithm"]
        except (ValueError, KeyError, TypeError) as exc:
            raise BundleError(f"not a signed bundle envelope: {exc}") from exc
        if algorithm != SIGNATURE_ALGORITHM:
            raise BundleError(f"unsupported signature algorithm {algorithm!r}")
        keys = trusted if isinstance(trusted, Mapping) else {k.key_id: k for k in trusted}
        public = keys.get(key_id)
        if public is None:
            raise BundleError(f"bundle signed by untrusted key {key_id[:16]}...")
        bundle = cls(body)
        bundle.verify(value, public)
        return bundle
