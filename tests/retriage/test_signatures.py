"""Slack and PagerDuty request signatures: vectors, and what the endpoints do with bad ones."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from router.config import PagerDutySettings, Settings
from router.integrations.pagerduty.signature import PagerDutySignature, sign_pagerduty
from router.integrations.slack.signature import SlackSignature
from router.metrics import Metrics
from router.store import Store, open_store
from router.web import create_app
from tests import factories
from tests.retriage.conftest import (
    CRASHLOOP,
    PD_OLD_SECRET,
    PD_SECRET,
    SIGNING_SECRET,
    Rig,
    pagerduty_signature,
    slack_headers,
    slack_signature,
)
from tests.web.webhelpers import asgi_client

# Slack's own example ("Verifying requests from Slack").
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
    b"channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
    b"command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands"
    b"%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121"
    b".803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_TIMESTAMP = 1531420618
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


class FixedClock:
    def __init__(self, now: float) -> None:
        self.value = now

    def now(self) -> float:
        return self.value


def slack_vector_headers(signature: str = SLACK_SIGNATURE, timestamp: object = SLACK_TIMESTAMP):
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature}


def test_slack_documented_vector_is_valid() -> None:
    check = SlackSignature(SIGNING_SECRET, FixedClock(SLACK_TIMESTAMP + 10))
    assert slack_signature(SLACK_BODY, SLACK_TIMESTAMP) == SLACK_SIGNATURE
    assert check.valid(SLACK_BODY, slack_vector_headers())


@pytest.mark.parametrize(
    ("secret", "body", "headers", "clock_offset"),
    [
        ("wrong-secret-0000000000000000000", SLACK_BODY, {}, 10),  # wrong secret
        (SIGNING_SECRET, SLACK_BODY + b"&text=list", {}, 10),  # tampered body
        (SIGNING_SECRET, SLACK_BODY, {}, 5 * 60 + 1),  # stale: more than five minutes old
        (SIGNING_SECRET, SLACK_BODY, {}, -(5 * 60 + 1)),  # from the future
        (SIGNING_SECRET, SLACK_BODY, {"X-Slack-Request-Timestamp": "soon"}, 10),
        (SIGNING_SECRET, SLACK_BODY, {"X-Slack-Signature": ""}, 10),
        (SIGNING_SECRET, b"\xff\xfe not utf-8", {}, 10),
    ],
)
def test_slack_signature_refusals(
    secret: str, body: bytes, headers: dict[str, str], clock_offset: float
) -> None:
    check = SlackSignature(secret, FixedClock(SLACK_TIMESTAMP + clock_offset))
    assert not check.valid(body, {**slack_vector_headers(), **headers})


def test_slack_signature_without_headers_is_invalid() -> None:
    assert not SlackSignature(SIGNING_SECRET).valid(SLACK_BODY, {})


BODY = json.dumps({"event": {"id": "01EV", "event_type": "incident.acknowledged"}}).encode()


def test_pagerduty_signature_vector() -> None:
    expected = hmac.new(PD_SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert sign_pagerduty(PD_SECRET, BODY) == f"v1={expected}"
    assert PagerDutySignature([PD_SECRET]).valid(BODY, f"v1={expected}")


@pytest.mark.parametrize(
    ("header", "valid"),
    [
        (pagerduty_signature(BODY), True),
        (pagerduty_signature(BODY, "another-secret"), False),  # wrong secret
        (pagerduty_signature(BODY + b" "), False),  # tampered body
        # PagerDuty rotating its secret: several signatures, any one may match
        (f"v1=00ff,{pagerduty_signature(BODY)}", True),
        (f"{pagerduty_signature(BODY, 'gone')}, {pagerduty_signature(BODY)}", True),
        (pagerduty_signature(BODY).replace("v1=", "v0="), False),  # another scheme
        (pagerduty_signature(BODY).upper(), False),
        ("", False),
        (None, False),
    ],
)
def test_pagerduty_signature(header: str | None, valid: bool) -> None:
    assert PagerDutySignature([PD_SECRET]).valid(BODY, header) is valid


def test_pagerduty_secrets_being_rotated_on_our_side_all_verify() -> None:
    settings = PagerDutySettings(webhook_secret=PD_SECRET, webhook_secrets=[PD_OLD_SECRET])
    check = PagerDutySignature.from_settings(settings)
    assert check.valid(BODY, pagerduty_signature(BODY, PD_OLD_SECRET))
    assert check.valid(BODY, pagerduty_signature(BODY, PD_SECRET))
    assert not check.valid(BODY, pagerduty_signature(BODY, "retired"))
    assert not PagerDutySignature.from_settings(PagerDutySettings()).configured


# -- the endpoints ---------------------------------------------------------------------


@pytest.fixture
async def bare_store(tmp_path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite:///{tmp_path / 'router.db'}")
    yield opened
    await opened.close()


async def test_unconfigured_endpoints_answer_401_with_json(bare_store: Store) -> None:
    app = create_app(Settings(), bare_store, Metrics())
    body = b"command=%2Ftriage&text=list"
    async with asgi_client(app) as client:
        answers = [
            await client.post("/slack/commands", content=body, headers=slack_headers(body)),
            await client.post("/slack/interactions", content=body, headers=slack_headers(body)),
            await client.post(
                "/pagerduty/webhook",
                content=BODY,
                headers={"X-PagerDuty-Signature": pagerduty_signature(BODY)},
            ),
        ]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert answers[0].json() == {
        "error": "unauthorized",
        "detail": "slack.signing_secret is not configured",
    }
    assert answers[2].json()["detail"] == "pagerduty.webhook_secret is not configured"


async def test_bad_signatures_get_401_and_start_no_work(rig: Rig) -> None:
    await rig.fire(_alert())
    runs = rig.diagnoser.runs
    body = b"command=%2Ftriage&text=PodCrashLooping&trigger_id=1.2.3&response_url=x"
    refused = [
        slack_headers(body, secret="not-the-signing-secret"),
        slack_headers(body, age=6 * 60),
        {
            **slack_headers(body),
            "X-Slack-Signature": slack_signature(body + b"!", int(time.time())),
        },
        {"Content-Type": "application/x-www-form-urlencoded"},
    ]
    for headers in refused:
        for path in ("/slack/commands", "/slack/interactions"):
            answer = await rig.http.post(path, content=body, headers=headers)
            assert answer.status_code == 401, (path, headers)
            assert answer.json()["detail"] == "invalid or stale Slack signature"
    event = json.dumps({"event": {"id": "E1", "event_type": "incident.acknowledged"}}).encode()
    for header in (pagerduty_signature(event, "wrong"), pagerduty_signature(event + b" "), ""):
        answer = await rig.http.post(
            "/pagerduty/webhook", content=event, headers={"X-PagerDuty-Signature": header}
        )
        assert answer.status_code == 401
        assert answer.json()["error"] == "unauthorized"
    assert await rig.store.retriages.rows() == []
    assert rig.diagnoser.runs == runs


def _alert() -> dict:
    return factories.alert("PodCrashLooping", labels=CRASHLOOP)


def test_a_signed_request_round_trips_through_httpx() -> None:
    """The helper signs what httpx sends (the body is never re-encoded)."""
    body = b"text=a%20b&command=%2Ftriage"
    request = httpx.Request(
        "POST", "http://x/slack/commands", content=body, headers=slack_headers(body)
    )
    check = SlackSignature(SIGNING_SECRET)
    assert check.valid(request.content, request.headers)
