"""A peer gateway without the batch endpoint (an older agent) still gets every frame, one
SM2-signed request each; a batch answer that does not answer every frame answers none."""

from __future__ import annotations

import asyncio
import base64
import ssl
from pathlib import Path

import pytest
from aiohttp import web

from support.audit_harness import free_port, make_tls
from trustspace.audit import auth
from trustspace.audit.keyfile import KeyFile
from trustspace.crypto import SM2PrivateKey
from trustspace_agent.gateway import batchwire
from trustspace_agent.gateway.delivery import INBOUND_PATH, PeerClient


async def serve(tmp_path: Path, app: web.Application) -> tuple[web.AppRunner, str, Path]:
    ca, cert, key = make_tls(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls).start()
    return runner, f"https://127.0.0.1:{port}", ca


@pytest.mark.asyncio
async def test_frames_go_one_by_one_to_a_peer_without_batches(tmp_path: Path) -> None:
    key = SM2PrivateKey.generate()
    (tmp_path / "key.pem").write_bytes(key.to_pem())
    seen: list[bytes] = []

    async def inbound(request: web.Request) -> web.Response:
        body = await request.read()
        h = request.headers
        key.public_key().verify(  # each frame signed on its own, as before batching
            auth.signing_input("POST", INBOUND_PATH, h[auth.H_TIMESTAMP], h[auth.H_NONCE], body),
            base64.b64decode(h[auth.H_SIGNATURE]),
        )
        seen.append(body)
        return web.json_response({"id": body.decode()}, status=201)

    app = web.Application()
    app.router.add_post(INBOUND_PATH, inbound)
    runner, url, ca = await serve(tmp_path, app)
    client = PeerClient("vn-hanoi", KeyFile(tmp_path / "key.pem"), str(ca), 10)
    await client.start()
    try:
        frames = [f"TSX1-{i}".encode() for i in range(12)]
        outcomes = await asyncio.gather(*(client.deliver(url, f) for f in frames))
        assert [(o.status, o.body["id"]) for o in outcomes] == [(201, f.decode()) for f in frames]
        assert sorted(seen) == sorted(frames)
    finally:
        await client.close()
        await runner.cleanup()


@pytest.mark.asyncio
async def test_a_short_batch_answer_fails_every_frame(tmp_path: Path) -> None:
    key = SM2PrivateKey.generate()
    (tmp_path / "key.pem").write_bytes(key.to_pem())

    async def batch(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"results": []})  # answers none of the frames

    app = web.Application()
    app.router.add_post(batchwire.BATCH_PATH, batch)
    runner, url, ca = await serve(tmp_path, app)
    client = PeerClient("vn-hanoi", KeyFile(tmp_path / "key.pem"), str(ca), 10)
    await client.start()
    try:
        outcome = await client.deliver(url, b"TSX1-a")
        assert (outcome.status, outcome.body["code"], outcome.delivered) == (
            502,
            "bad_response",
            False,
        )
    finally:
        await client.close()
        await runner.cleanup()
