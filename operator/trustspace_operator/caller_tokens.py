"""Bearer tokens for the apps that call a node's agent (``spec.capabilities.gateway.callers``).

The agent's local API names its caller in every audit event and counts the caller's
breaker (B8), so callers authenticate (trustspace_agent.gateway.callers). For each listed caller
the operator keeps a random token in the Secret ``<node>-caller-<name>`` in the node's
namespace, for that app to mount, and renders only the tokens' SM3 digests for the agent
(render.callers_secret). The token Secret is the token's only home: a token written there
by hand (a rotation) is the one that counts from then on; one that is missing or unusable
is replaced by a new random token. Tokens never reach status, events or logs.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets

from trustspace.api.dataspacenode import DataSpaceNode
from trustspace.crypto import sm3
from trustspace.kube import Conflict, Kube, Obj
from trustspace.kube import kinds as k
from trustspace_operator import render

#: What a usable token looks like: what ``secrets.token_urlsafe`` and ``openssl rand
#: -base64`` print, long enough to be unguessable, and safe in an HTTP header.
_TOKEN = re.compile(r"^[A-Za-z0-9+/=_.~-]{32,512}$")


def new_token() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


def read_token(secret: Obj | None) -> str | None:
    """The token a caller Secret holds, or None when it holds no usable one."""
    raw = ((secret or {}).get("data") or {}).get(render.TOKEN_KEY)
    if not raw:
        return None
    try:
        token = base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return token if _TOKEN.match(token) else None


def digest(token: str) -> str:
    return sm3(token.encode()).hex()


def _fits(desired: Obj, live: Obj) -> bool:
    """Whether the live Secret still carries our labels and owner (its token was checked)."""
    want, have = desired["metadata"], live.get("metadata") or {}
    labels = have.get("labels") or {}
    if any(labels.get(key) != value for key, value in want["labels"].items()):
        return False
    uids = {o.get("uid") for o in have.get("ownerReferences") or []}
    return all(o["uid"] in uids for o in want.get("ownerReferences") or [])


def ensure(
    kube: Kube, node: DataSpaceNode, *, likely_missing: bool = False
) -> tuple[dict[str, str], list[str]]:
    """Make every listed caller's token Secret usable. Returns each caller's token digest
    and what was done, by Secret name only (for Events)."""
    ns = render.target_namespace(node)
    digests: dict[str, str] = {}
    done: list[str] = []
    for caller in render.callers(node):
        name = render.Names(node.name).caller_token(caller)
        if likely_missing:
            try:
                # Create, never apply blind: a token an app already mounts must survive a
                # restart of the operator between creating it and recording the node.
                kube.create(render.caller_token_secret(node, caller, token := new_token()))
                digests[caller] = digest(token)
                done.append(f"issued Secret {ns}/{name}")
                continue
            except Conflict:
                pass
        live = kube.get(k.SECRET, name, ns)
        kept = read_token(live)
        token = kept or new_token()
        desired = render.caller_token_secret(node, caller, token)
        if live is None or kept is None or not _fits(desired, live):
            kube.apply(desired)
            verb = "issued" if live is None else "reissued" if kept is None else "restored"
            done.append(f"{verb} Secret {ns}/{name}")
        digests[caller] = digest(token)
    return digests, done


def remove_stale(kube: Kube, node: DataSpaceNode) -> list[str]:
    """Delete the token Secrets of callers no longer listed, and the digests Secret when
    none are: a removed caller's token must not linger where an app could still read it.
    One list call (both carry the caller label), made only when the spec changed."""
    ns = render.target_namespace(node)
    keep = set(render.callers(node))
    digests_secret = render.Names(node.name).callers
    selector = f"{render.NODE_LABEL}={node.name},{render.CALLER_LABEL}"
    gone: list[str] = []
    for secret in list(kube.list(k.SECRET, ns, labels=selector)):
        meta = secret["metadata"]
        if meta["name"] == digests_secret:
            stale = not keep
        else:
            stale = (meta.get("labels") or {}).get(render.CALLER_LABEL) not in keep
        if stale and kube.delete(k.SECRET, meta["name"], ns):
            gone.append(f"Secret {ns}/{meta['name']}")
    return gone
