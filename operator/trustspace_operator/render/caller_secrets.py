"""The Secrets of caller authentication: each app's bearer token, and the agent's file of
their SM3 digests (the tokens themselves are made in caller_tokens.py)."""

from __future__ import annotations

import base64
from collections.abc import Mapping

import yaml

from trustspace.api.dataspacenode import DataSpaceNode
from trustspace.kube import Obj
from trustspace_operator.render.constants import CALLER_LABEL, CALLERS_KEY, TOKEN_KEY
from trustspace_operator.render.meta import Names, callers, object_meta


def caller_token_secret(node: DataSpaceNode, caller: str, token: str) -> Obj:
    """A caller's bearer token, for the app to mount; the agent never sees it."""
    meta = object_meta(node, Names(node.name).caller_token(caller))
    meta["labels"] = {**meta["labels"], CALLER_LABEL: caller}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": meta,
        "data": {TOKEN_KEY: base64.b64encode(token.encode()).decode()},
    }


def callers_secret(node: DataSpaceNode, digests: Mapping[str, str]) -> Obj:
    """The agent's ``callerTokensFile``: SM3 digests only, so the agent's Pod holds nothing
    that would let it (or whoever reads its volumes) call as an app."""
    text = yaml.safe_dump({c: [digests[c]] for c in callers(node)}, sort_keys=True)
    meta = object_meta(node, Names(node.name).callers)
    # Labelled like the token Secrets (no caller of its own), so one list finds them all.
    meta["labels"] = {**meta["labels"], CALLER_LABEL: ""}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": meta,
        "data": {CALLERS_KEY: base64.b64encode(text.encode()).decode()},
    }
