"""``POST /alertmanager`` through the ASGI transport: every status, persistence, idempotency."""

from __future__ import annotations

import asyncio
import json
import shutil

import httpx

from router.config import Settings
from router.metrics import Metrics
from router.store import Store, open_store
from router.store.database import Database
from router.web import create_app
from router.web.errors import field_path
from tests.web.webhelpers import TOKEN, make_alert, make_payload

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def post(client: httpx.AsyncClient, payload: object, **kwargs) -> httpx.Response:
    headers = {**AUTH, **kwargs.pop("headers", {})}
    return await client.post("/alertmanager", json=payload, headers=headers, **kwargs)


async def test_accepts_and_persists(client, store: Store):
    payload = make_payload(make_alert("A"), make_alert("B"))
    response = await post(client, payload)
    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "alerts": 2, "new": 2, "duplicates": 0}
    assert await store.queue_depth() == 2


async def test_resend_is_duplicate(client, store: Store):
    payload = make_payload(make_alert("A"), make_alert("B"))
    await post(client, payload)
    again = await post(client, payload)
    assert again.status_code == 202
    assert again.json() == {"status": "accepted", "alerts": 2, "new": 0, "duplicates": 2}
    assert await store.queue_depth() == 2


async def test_concurrent_identical_deliveries_create_one_state_each(client, store: Store):
    payload = make_payload(make_alert("A"), make_alert("B"), make_alert("C"))
    responses = await asyncio.gather(*(post(client, payload) for _ in range(20)))
    assert [r.status_code for r in responses] == [202] * 20
    assert sum(r.json()["new"] for r in responses) == 3
    assert sum(r.json()["duplicates"] for r in responses) == 3 * 19
    assert await store.queue_depth() == 3


async def test_state_changes_are_new(client, store: Store):
    await post(client, make_payload(make_alert("A")))
    resolved = make_alert("A", status="resolved", ends_at="2024-05-01T12:30:00Z")
    response = await post(client, make_payload(resolved, status="resolved"))
    assert response.json()["new"] == 1
    refire = make_alert("A", starts_at="2024-05-01T13:00:00Z")
    response = await post(client, make_payload(refire))
    assert response.json()["new"] == 1
    assert (await post(client, make_payload(refire))).json()["duplicates"] == 1
    assert await store.queue_depth() == 3


async def test_empty_alert_list_is_accepted(client):
    payload = make_payload()
    payload["alerts"] = []
    response = await post(client, payload)
    assert response.status_code == 202
    assert response.json()["alerts"] == 0


async def test_content_type_with_charset_is_accepted(client):
    body = json.dumps(make_payload()).encode()
    headers = {**AUTH, "Content-Type": "application/json; charset=utf-8"}
    response = await client.post("/alertmanager", content=body, headers=headers)
    assert response.status_code == 202


async def test_wrong_content_type_is_415(client):
    body = json.dumps(make_payload()).encode()
    headers = {**AUTH, "Content-Type": "text/plain"}
    response = await client.post("/alertmanager", content=body, headers=headers)
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported media type"
    assert "text/plain" in response.json()["detail"]


async def test_missing_content_type_is_415(client):
    response = await client.post("/alertmanager", content=b"{}", headers=AUTH)
    assert response.status_code == 415


async def test_malformed_json_is_400_with_position(client, store: Store):
    body = b'{\n  "version": "4",\n  "alerts": [,]\n}'
    headers = {**AUTH, "Content-Type": "application/json"}
    response = await client.post("/alertmanager", content=body, headers=headers)
    assert response.status_code == 400
    data = response.json()
    assert data["error"] == "malformed JSON"
    assert (data["detail"]["line"], data["detail"]["column"]) == (3, 14)
    assert await store.queue_depth() == 0


async def test_invalid_utf8_is_400(client):
    headers = {**AUTH, "Content-Type": "application/json"}
    response = await client.post("/alertmanager", content=b'{"a": "\xff"}', headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == "malformed JSON"


async def test_schema_invalid_is_422_naming_fields(client, store: Store):
    bad = make_alert()
    bad["startsAt"] = "yesterday"
    payload = make_payload(make_alert("Ok"), bad)
    del payload["receiver"]
    response = await post(client, payload)
    assert response.status_code == 422
    data = response.json()
    assert data["error"] == "invalid payload"
    fields = {d["field"] for d in data["detail"]}
    assert fields == {"receiver", "alerts[1].startsAt"}
    assert all(d["message"] for d in data["detail"])
    assert await store.queue_depth() == 0


async def test_non_object_body_is_422(client):
    response = await post(client, [1, 2])
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "(body)"


async def test_unsupported_version_is_422(client):
    payload = make_payload()
    payload["version"] = "5"
    response = await post(client, payload)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "version"


def test_field_path():
    assert field_path(("alerts", 0, "labels", "severity")) == "alerts[0].labels.severity"
    assert field_path(("receiver",)) == "receiver"
    assert field_path(()) == "(body)"


async def test_too_large_by_content_length_is_413(make_app, store: Store):
    app = make_app(token=TOKEN, max_body_bytes=100)
    body = json.dumps(make_payload()).encode()
    assert len(body) > 100
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        headers = {**AUTH, "Content-Type": "application/json"}
        response = await client.post("/alertmanager", content=body, headers=headers)
    assert response.status_code == 413
    assert response.json() == {"error": "payload too large", "detail": "the limit is 100 bytes"}
    assert await store.queue_depth() == 0


async def test_streaming_body_stops_reading_at_the_limit(make_app):
    """Without Content-Length the body is counted as it arrives and reading stops at the limit."""
    app = make_app(token=TOKEN, max_body_bytes=1000)
    pulled = 0
    chunks = 50

    async def receive():
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * 100, "more_body": pulled < chunks}

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/alertmanager",
        "raw_path": b"/alertmanager",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"authorization", f"Bearer {TOKEN}".encode()),
            (b"content-type", b"application/json"),
            (b"transfer-encoding", b"chunked"),
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"] == "payload too large"
    assert pulled == 11  # 11 chunks of 100 bytes is the first read past 1000; nothing after it


async def test_store_unavailable_is_503(make_app, tmp_path):
    """The database directory disappears under a running store: retryable, never a 4xx."""
    path = tmp_path / "gone"
    store = await open_store(f"sqlite+aiosqlite:///{path / 'router.db'}")
    await store.close()
    shutil.rmtree(path)
    app = make_app(token=TOKEN, store=store)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        response = await post(client, make_payload())
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert response.json() == {"error": "store unavailable, retry later"}


async def test_postgres_unreachable_is_503(unused_tcp_port):
    dsn = f"postgresql://router:pg-s3cret-pw@127.0.0.1:{unused_tcp_port}/router"
    store = Store(Database(dsn, connect_timeout=2))
    settings = Settings(webhook={"token": TOKEN})
    app = create_app(settings, store, Metrics())
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            response = await post(client, make_payload())
    finally:
        await store.close()
    assert response.status_code == 503
    assert "Retry-After" in response.headers
    assert "pg-s3cret-pw" not in response.text


async def test_draining_is_503(app, client, store: Store):
    app.state.accepting = False
    response = await post(client, make_payload())
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert "shutting down" in response.json()["error"]
    assert await store.queue_depth() == 0


async def test_auth_is_checked_before_anything_else(client):
    response = await client.post(
        "/alertmanager", content=b"not json", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 401
