"""Webhook authentication: bearer, basic, both, none; over ASGI and over real HTTP."""

from __future__ import annotations

import base64
import hmac
import logging

import httpx
import pytest

from router.web import auth as auth_module
from router.web.auth import WebhookAuth, constant_time_equal, warn_if_unauthenticated
from tests.web.webhelpers import (
    PASSWORD,
    TOKEN,
    USERNAME,
    LiveServer,
    asgi_client,
    basic,
    make_payload,
)


async def post(app, headers: dict[str, str]) -> httpx.Response:
    async with asgi_client(app) as client:
        return await client.post("/alertmanager", json=make_payload(), headers=headers)


# The function itself.


def test_bearer_only():
    auth = WebhookAuth(token=TOKEN)
    assert auth.check(f"Bearer {TOKEN}")
    assert auth.check(f"bearer {TOKEN}")  # the scheme is case-insensitive
    assert not auth.check(f"Bearer {TOKEN}x")
    assert not auth.check(f"Bearer {TOKEN[:-1]}")
    assert not auth.check(f"Bearer {TOKEN[:-1]}X")
    assert not auth.check("Bearer ")
    assert not auth.check(None)
    assert not auth.check(basic(USERNAME, TOKEN))  # basic is not configured
    assert auth.challenge() == 'Bearer realm="runbook-router"'


def test_basic_only():
    auth = WebhookAuth(username=USERNAME, password=PASSWORD)
    assert auth.check(basic(USERNAME, PASSWORD))
    assert not auth.check(basic(USERNAME, PASSWORD + "x"))
    assert not auth.check(basic(USERNAME + "x", PASSWORD))
    assert not auth.check(basic("", ""))
    assert not auth.check("Basic " + base64.b64encode(USERNAME.encode()).decode())  # no colon
    assert not auth.check("Basic %%%not-base64")
    assert not auth.check("Basic é")
    assert not auth.check(f"Bearer {PASSWORD}")
    assert auth.challenge().startswith('Basic realm="runbook-router"')


def test_password_may_contain_colons_and_unicode():
    auth = WebhookAuth(username="am", password="a:b:ç")
    assert auth.check(basic("am", "a:b:ç"))
    assert not auth.check(basic("am", "a:b"))


def test_both_configured_either_works():
    auth = WebhookAuth(token=TOKEN, username=USERNAME, password=PASSWORD)
    assert auth.check(f"Bearer {TOKEN}")
    assert auth.check(basic(USERNAME, PASSWORD))
    assert not auth.check(f"Bearer {PASSWORD}")
    assert "Bearer" in auth.challenge() and "Basic" in auth.challenge()


def test_nothing_configured_accepts_everything():
    auth = WebhookAuth()
    assert not auth.configured
    assert auth.check(None)
    assert auth.check("Bearer whatever")


def test_comparison_goes_through_compare_digest(monkeypatch):
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        assert isinstance(a, bytes) and isinstance(b, bytes)
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth_module.hmac, "compare_digest", spy)
    auth = WebhookAuth(token=TOKEN, username=USERNAME, password=PASSWORD)
    assert auth.check(f"Bearer {TOKEN}")
    assert not auth.check(basic("nobody", PASSWORD))
    # One comparison for the token; username and password are both compared even
    # when the username is already wrong (no early exit that reveals which failed).
    assert len(calls) == 3
    # Digests of equal length are compared, so the length of the secret does not leak either.
    assert {len(a) for a, _ in calls} == {32}


def test_constant_time_equal():
    assert constant_time_equal(b"abc", b"abc")
    assert not constant_time_equal(b"abc", b"abd")
    assert not constant_time_equal(b"abc", b"abcd")
    assert not constant_time_equal(b"", b"a")


# Over HTTP (ASGI).


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": basic(USERNAME, "wrong-password")},
        {"Authorization": f"Token {TOKEN}"},
    ],
    ids=["missing", "wrong-bearer", "wrong-basic", "unknown-scheme"],
)
async def test_401(app, headers):
    response = await post(app, headers)
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized", "detail": "missing or invalid credentials"}
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ") and "Basic " in challenge


async def test_bearer_only_app(make_app):
    app = make_app(token=TOKEN)
    assert (await post(app, {"Authorization": f"Bearer {TOKEN}"})).status_code == 202
    rejected = await post(app, {"Authorization": basic(USERNAME, PASSWORD)})
    assert rejected.status_code == 401
    assert rejected.headers["WWW-Authenticate"] == 'Bearer realm="runbook-router"'


async def test_basic_only_app(make_app):
    app = make_app(username=USERNAME, password=PASSWORD)
    assert (await post(app, {"Authorization": basic(USERNAME, PASSWORD)})).status_code == 202
    rejected = await post(app, {"Authorization": f"Bearer {TOKEN}"})
    assert rejected.status_code == 401
    assert rejected.headers["WWW-Authenticate"].startswith("Basic ")


async def test_unauthenticated_app_accepts_and_warns(make_app, caplog):
    with caplog.at_level(logging.WARNING, logger="router.web"):
        app = make_app()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "UNAUTHENTICATED" in warnings[0].getMessage()
    assert (await post(app, {})).status_code == 202


async def test_authenticated_app_does_not_warn(make_app, caplog):
    with caplog.at_level(logging.WARNING, logger="router.web"):
        make_app(token=TOKEN)
    assert not caplog.records


def test_warn_if_unauthenticated_reports():
    logger = logging.getLogger("test.auth")
    assert warn_if_unauthenticated(WebhookAuth(), logger)
    assert not warn_if_unauthenticated(WebhookAuth(token="t"), logger)


# Over real HTTP (uvicorn on a loopback port).


async def test_live_auth(live: LiveServer):
    async with httpx.AsyncClient(base_url=live.url) as client:
        payload = make_payload()
        none = await client.post("/alertmanager", json=payload)
        wrong = await client.post("/alertmanager", json=payload, auth=(USERNAME, "nope"))
        bearer = await client.post(
            "/alertmanager", json=payload, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        basic_ok = await client.post("/alertmanager", json=payload, auth=(USERNAME, PASSWORD))
    assert (none.status_code, wrong.status_code) == (401, 401)
    assert "Basic" in none.headers["www-authenticate"]
    assert (bearer.status_code, basic_ok.status_code) == (202, 202)
    assert basic_ok.json()["duplicates"] == 1
