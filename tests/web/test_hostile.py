"""Hostile input to the four POST endpoints: each case of the security review, and properties.

Every request carries valid credentials and signatures, so it reaches the parsers; the
answer must be a 2xx or a 4xx with a JSON body saying what is wrong, never a 5xx, and a
bad request must never fail a good one sent at the same moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.alerts import WebhookPayload
from router.config import PagerDutySettings, Settings, SlackSettings, WebhookSettings
from router.integrations.slack.response import valid_response_url
from router.metrics import Metrics
from router.store import Store, open_store
from router.web import create_app
from tests.pg import fresh_database
from tests.retriage.conftest import PD_SECRET, SIGNING_SECRET, pagerduty_signature, slack_headers
from tests.web.webhelpers import TOKEN, asgi_client, make_alert, make_payload

AM = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
DEEP = b"[" * 1000 + b"]" * 1000
PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


CONFIG = Settings(
    webhook=WebhookSettings(token=TOKEN),
    slack=SlackSettings(signing_secret=SIGNING_SECRET),
    pagerduty=PagerDutySettings(webhook_secret=PD_SECRET),
)


@pytest.fixture
async def http(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(CONFIG, store, Metrics())) as client:
        yield client


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def any_store(request, tmp_path) -> AsyncIterator[Store]:
    """The store on SQLite and on PostgreSQL (whose text cannot hold NUL)."""
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'router.db'}"
        else:
            url = await stack.enter_async_context(fresh_database())
        opened = await open_store(url)
        stack.push_async_callback(opened.close)
        yield opened


async def alertmanager(http: httpx.AsyncClient, body: bytes) -> httpx.Response:
    return await http.post("/alertmanager", content=body, headers=AM)


async def slack(http: httpx.AsyncClient, path: str, body: bytes) -> httpx.Response:
    return await http.post(path, content=body, headers=slack_headers(body))


async def interaction(http: httpx.AsyncClient, payload: Any) -> httpx.Response:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return await slack(http, "/slack/interactions", b"payload=" + quote(raw).encode())


async def pagerduty(http: httpx.AsyncClient, body: bytes) -> httpx.Response:
    headers = {"X-PagerDuty-Signature": pagerduty_signature(body)}
    return await http.post("/pagerduty/webhook", content=body, headers=headers)


def assert_answered(answer: httpx.Response) -> None:
    """A 2xx or 4xx; a 4xx (and any non-empty body) is JSON with an error."""
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert answer.json()["error"]
    elif answer.content:
        assert isinstance(answer.json(), dict)


# -- each case of the review -----------------------------------------------------------


async def test_json_nested_1000_deep_is_a_400_everywhere(http: httpx.AsyncClient) -> None:
    answers = [
        await alertmanager(http, DEEP),
        await pagerduty(http, DEEP),
        await interaction(http, DEEP),
    ]
    for answer in answers:
        assert answer.status_code == 400
        assert "nested too deeply" in answer.json()["detail"]["message"]


async def test_a_number_of_5000_digits_is_a_400(http: httpx.AsyncClient) -> None:
    body = b'{"version":"4","truncatedAlerts":' + b"9" * 5000 + b"}"
    answer = await alertmanager(http, body)
    assert answer.status_code == 400
    assert answer.json()["detail"] == {"message": "a number has too many digits"}


async def test_a_large_truncated_alerts_count_is_a_422(http: httpx.AsyncClient) -> None:
    body = json.dumps({**make_payload(), "truncatedAlerts": 10**30}).encode()
    answer = await alertmanager(http, body)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["field"] == "truncatedAlerts"


@pytest.mark.parametrize("escape", ["\\ud800", "\\u0000", "\\udfff\\ud800"])
async def test_unstorable_characters_are_replaced_and_fail_no_other_webhook(
    any_store: Store, escape: str
) -> None:
    bad = json.dumps(make_payload(make_alert("Bad", pod="p"))).replace('"p"', f'"{escape}"')
    bad = bad.replace('"team-a"', f'"team{escape}"')
    good = [json.dumps(make_payload(make_alert(f"Good{i}"))).encode() for i in range(30)]
    async with asgi_client(create_app(CONFIG, any_store, Metrics())) as http:
        answers = await asyncio.gather(*(alertmanager(http, b) for b in [bad.encode(), *good]))
    assert [a.status_code for a in answers] == [202] * 31
    assert sum(a.json()["new"] for a in answers) == 31
    stored = await any_store.lookup.latest_state("fp-bad")
    assert stored is not None
    assert "\ufffd" in stored.alert.labels["pod"] and stored.receiver.startswith("team\ufffd")


async def test_one_unstorable_payload_in_a_batch_fails_alone(store: Store) -> None:
    """Even if bad text reached the store, the requests committed with it would succeed."""
    bad = WebhookPayload.model_validate({**make_payload(), "receiver": "\ud800"})
    good = [WebhookPayload.model_validate(make_payload(make_alert(f"G{i}"))) for i in range(10)]
    results = await asyncio.gather(
        store.ingest(bad), *(store.ingest(p) for p in good), return_exceptions=True
    )
    assert isinstance(results[0], ValueError)  # the text cannot be encoded for the store
    assert "surrogates not allowed" in str(results[0])
    assert [r.new for r in results[1:]] == [1] * 10  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "block_actions", "actions": "rerun_diagnostics"},
        {"type": "block_actions", "actions": [1]},
        {"type": "block_actions", "user": "U1", "actions": []},
        {"type": "block_actions", "actions": [{"action_id": ["x"]}]},
    ],
)
async def test_wrong_typed_slack_interactions_are_a_400_naming_the_field(
    http: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    answer = await interaction(http, payload)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid payload"
    assert answer.json()["detail"][0]["field"].split("[")[0].split(".")[0] in ("actions", "user")


async def test_a_button_for_an_unknown_alert_is_answered(http: httpx.AsyncClient) -> None:
    press = {
        "type": "block_actions",
        "user": {"id": "U1"},
        "actions": [{"action_id": "rerun_diagnostics", "value": "<!channel>"}],
    }
    answer = await interaction(http, press)
    assert answer.status_code == 200
    assert "`&lt;!channel&gt;` is no longer known" in answer.json()["text"]


async def test_an_incident_number_beyond_64_bits_is_a_400(http: httpx.AsyncClient) -> None:
    event = {
        "event": {
            "id": "E1",
            "event_type": "incident.acknowledged",
            "data": {"id": "P1", "number": 9223372036854775808, "incident_key": "k"},
        }
    }
    answer = await pagerduty(http, json.dumps(event).encode())
    assert answer.status_code == 400
    assert answer.json()["detail"][0]["field"] == "number"


async def test_an_incident_id_that_is_not_an_id_is_a_400(http: httpx.AsyncClient) -> None:
    data = {"id": "../../users", "incident_key": "k"}
    event = {"event": {"id": "E1", "event_type": "incident.triggered", "data": data}}
    answer = await pagerduty(http, json.dumps(event).encode())
    assert answer.status_code == 400 and answer.json()["detail"][0]["field"] == "id"


async def test_a_signed_slack_body_that_is_not_utf8_says_so(http: httpx.AsyncClient) -> None:
    for path in ("/slack/commands", "/slack/interactions"):
        answer = await slack(http, path, b"text=\xff\xfe")
        assert answer.status_code == 400
        assert answer.json() == {
            "error": "malformed body",
            "detail": "the body is not valid UTF-8 (byte 5)",
        }


@pytest.mark.parametrize(
    ("command", "text"), [("/triage", "<!channel> x"), ("<!here>", "help"), ("<!here>", "nope")]
)
async def test_what_a_slash_command_user_typed_is_escaped(
    http: httpx.AsyncClient, command: str, text: str
) -> None:
    body = f"command={quote(command)}&text={quote(text)}".encode()
    answer = await slack(http, "/slack/commands", body)
    assert answer.status_code == 200
    assert "<!" not in answer.json()["text"] and "&lt;!" in answer.json()["text"]


@pytest.mark.parametrize(
    ("url", "valid"),
    [
        ("https://hooks.slack.com/commands/T1/2/abc", True),
        ("http://hooks.slack.com/commands/T1/2/abc", False),
        ("https://hooks.slack.com.evil.example/commands", False),
        ("https://evil.example/commands", False),
        ("https://hooks.slack.com/commands/\r\nX: 1", False),
        ("https://hooks.slack.com/" + "a" * 3000, False),
        ("http://127.0.0.1:9/response/x", True),  # the configured api_url's host
        ("http://127.0.0.1:10/response/x", False),
    ],
)
def test_response_urls_must_be_slacks(url: str, valid: bool) -> None:
    assert valid_response_url(url, "http://127.0.0.1:9/api/") is valid


async def test_an_alert_with_5000_labels_is_acknowledged(
    http: httpx.AsyncClient, store: Store
) -> None:
    labels = {f"label_{i:05d}": f"value-{i}-{'x' * 20}" for i in range(5000)}
    body = json.dumps(make_payload(make_alert("Wide", **labels))).encode()
    answer = await alertmanager(http, body)
    assert answer.status_code == 202 and answer.json()["new"] == 1
    assert await store.lookup.by_fingerprint("fp-wide") is not None


# -- properties --------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
ALERT_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(["firing", "resolved", "x"]) | JSON_VALUES,
        "labels": st.dictionaries(st.text(max_size=20), st.text(max_size=40)) | JSON_VALUES,
        "annotations": st.dictionaries(st.text(max_size=20), st.text()) | JSON_VALUES,
        "startsAt": st.sampled_from(["2026-11-22T09:58:00+02:00", "0001-01-01T00:00:00Z"])
        | JSON_VALUES,
        "fingerprint": st.text(max_size=30) | JSON_VALUES,
        "generatorURL": st.text() | JSON_VALUES,
    },
)
WEBHOOKS = st.fixed_dictionaries(
    {"version": st.just("4"), "status": st.just("firing")},
    optional={
        "groupKey": st.text() | JSON_VALUES,
        "receiver": st.text() | JSON_VALUES,
        "truncatedAlerts": st.integers() | JSON_VALUES,
        "alerts": st.lists(ALERT_FIELDS, max_size=3) | JSON_VALUES,
    },
)
SLACK_INTERACTIONS = st.fixed_dictionaries(
    {"type": st.just("block_actions") | JSON_VALUES},
    optional={
        "trigger_id": JSON_VALUES,
        "response_url": st.text() | JSON_VALUES,
        "user": st.fixed_dictionaries({}, optional={"id": JSON_VALUES}) | JSON_VALUES,
        "actions": st.lists(
            st.fixed_dictionaries(
                {"action_id": st.just("rerun_diagnostics") | JSON_VALUES},
                optional={"value": JSON_VALUES, "action_ts": JSON_VALUES},
            )
        )
        | JSON_VALUES,
    },
)
PAGERDUTY_EVENTS = st.fixed_dictionaries(
    {},
    optional={
        "event": st.fixed_dictionaries(
            {},
            optional={
                "id": JSON_VALUES,
                "event_type": st.sampled_from(["incident.triggered", "x"]) | JSON_VALUES,
                "data": st.fixed_dictionaries(
                    {},
                    optional={
                        "id": JSON_VALUES,
                        "number": st.integers() | JSON_VALUES,
                        "incident_key": JSON_VALUES,
                    },
                )
                | JSON_VALUES,
            },
        )
        | JSON_VALUES
    },
)


@PROPERTY
@given(body=WEBHOOKS.map(lambda d: json.dumps(d).encode()) | st.binary(max_size=200))
async def test_any_alertmanager_body_is_answered(http: httpx.AsyncClient, body: bytes) -> None:
    assert_answered(await alertmanager(http, body))


@PROPERTY
@given(payload=SLACK_INTERACTIONS | JSON_VALUES | st.binary(max_size=100))
async def test_any_slack_interaction_is_answered(http: httpx.AsyncClient, payload: Any) -> None:
    assert_answered(await interaction(http, payload))


@PROPERTY
@given(
    form=st.dictionaries(
        st.sampled_from(["command", "text", "user_id", "response_url", "trigger_id", "user_name"]),
        st.text(max_size=40),
    ).map(lambda d: "&".join(f"{k}={quote(v)}" for k, v in d.items()).encode())
    | st.binary(max_size=100)
)
async def test_any_slash_command_is_answered(http: httpx.AsyncClient, form: bytes) -> None:
    assert_answered(await slack(http, "/slack/commands", form))


@PROPERTY
@given(body=PAGERDUTY_EVENTS.map(lambda d: json.dumps(d).encode()) | st.binary(max_size=200))
async def test_any_pagerduty_event_is_answered(http: httpx.AsyncClient, body: bytes) -> None:
    assert_answered(await pagerduty(http, body))
