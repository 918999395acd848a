"""Against a real uvicorn server on a loopback port: real sockets, real HTTP/1.1 framing."""

from __future__ import annotations

import json

import httpx

from router.store import Store
from tests.web.webhelpers import TOKEN, LiveServer, make_alert, make_payload

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_happy_path(live: LiveServer, store: Store):
    payload = make_payload(make_alert("A"), make_alert("B"))
    async with httpx.AsyncClient(base_url=live.url) as client:
        first = await client.post("/alertmanager", json=payload, headers=AUTH)
        again = await client.post("/alertmanager", json=payload, headers=AUTH)
        health = await client.get("/healthz")
    assert first.status_code == 202
    assert first.headers["content-type"] == "application/json"
    assert first.json() == {"status": "accepted", "alerts": 2, "new": 2, "duplicates": 0}
    assert again.json()["duplicates"] == 2
    assert health.json() == {"status": "ok"}
    assert await store.queue_depth() == 2


async def test_chunked_upload_under_the_limit_is_accepted(live: LiveServer):
    body = json.dumps(make_payload()).encode()

    async def chunks():
        for i in range(0, len(body), 16):
            yield body[i : i + 16]

    headers = {**AUTH, "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=live.url) as client:
        response = await client.post("/alertmanager", content=chunks(), headers=headers)
    assert response.status_code == 202


async def test_chunked_upload_over_the_limit_is_413(make_app, store: Store):
    """No Content-Length: the app counts while reading and stops at the limit."""
    app = make_app(token=TOKEN, max_body_bytes=4096)
    read_by_app = 0

    async def counting(scope, receive, send):
        async def counted_receive():
            nonlocal read_by_app
            message = await receive()
            read_by_app += len(message.get("body", b""))
            return message

        await app(scope, counted_receive, send)

    async def upload():
        for _ in range(1024):  # 8 MiB
            yield b" " * 8192

    headers = {**AUTH, "Content-Type": "application/json"}
    async with LiveServer(counting) as live, httpx.AsyncClient(base_url=live.url) as client:
        response = await client.post("/alertmanager", content=upload(), headers=headers)
        # The connection is still usable afterwards.
        health = await client.get("/healthz")
    assert response.status_code == 413
    assert response.json()["error"] == "payload too large"
    assert 4096 < read_by_app <= 4096 + 64 * 1024  # at most one server read past the limit
    assert health.status_code == 200
    assert await store.queue_depth() == 0


async def test_content_length_over_the_limit_is_413(make_app):
    app = make_app(token=TOKEN, max_body_bytes=64)
    body = json.dumps(make_payload()).encode()
    headers = {**AUTH, "Content-Type": "application/json"}
    async with LiveServer(app) as live, httpx.AsyncClient(base_url=live.url) as client:
        response = await client.post("/alertmanager", content=body, headers=headers)
    assert response.status_code == 413
    assert response.json()["detail"] == "the limit is 64 bytes"
