"""The PagerDuty sink when PagerDuty fails: HTTP errors, time-outs, TLS, secrets in errors."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest

from router.delivery import DeliveryError
from router.integrations.pagerduty import client as pagerduty_http
from router.integrations.pagerduty.sink import PagerDutySink
from tests.harness.fake_pagerduty import API_TOKEN, FakePagerDuty, FakePagerDutyServer
from tests.integrations.pagerduty.support import (
    ROUTING_KEY,
    triage,
)
from tests.procs import free_port


async def test_a_500_is_transient_and_the_next_attempt_succeeds(
    sink: PagerDutySink, fake: FakePagerDuty
) -> None:
    fake.fail("/v2/enqueue", 500)
    trigger = sink.render(triage())[0]
    with pytest.raises(DeliveryError) as caught:
        await sink.send(trigger)
    assert not caught.value.permanent
    assert "HTTP 500" in caught.value.reason
    assert len(fake.events()) == 1  # the client did not retry by itself: the outbox does
    await sink.send(trigger)
    assert len(fake.events()) == 2 and len(fake.incidents) == 1


async def test_a_429_returns_at_once_with_retry_after(
    sink: PagerDutySink, fake: FakePagerDuty
) -> None:
    fake.fail("/v2/enqueue", 429, times=100, retry_after="7", body={"status": "throttled"})
    trigger = sink.render(triage())[0]
    with pytest.raises(DeliveryError) as caught:
        await sink.send(trigger)
    assert caught.value.retry_after == 7.0 and not caught.value.permanent
    assert caught.value.kind == "rate_limited"
    assert len(fake.events()) == 1  # not retried forever, not retried at all


async def test_a_429_on_the_rest_api_without_retry_after_has_a_default(
    sink: PagerDutySink, fake: FakePagerDuty
) -> None:
    trigger, note = sink.render(triage())
    await sink.send(trigger)
    fake.fail("/incidents", 429, times=100)
    with pytest.raises(DeliveryError) as caught:
        await sink.send(note)
    assert caught.value.retry_after == 30.0
    assert len(fake.calls("GET", "/incidents")) == 1


async def test_a_hanging_server_times_out_as_transient(
    fake: FakePagerDuty, make_sink: Callable[..., PagerDutySink]
) -> None:
    sink = make_sink(timeout_seconds=0.5)
    fake.hang("/v2/enqueue")
    with pytest.raises(DeliveryError) as caught:
        await sink.send(sink.render(triage())[0])
    assert not caught.value.permanent and caught.value.unsure  # it may have been applied
    assert caught.value.kind == "timeout"
    assert "timed out" in caught.value.reason
    assert len(fake.events()) == 1  # one request, given up on by the client's own timeout


async def test_connection_refused_is_transient(make_sink: Callable[..., PagerDutySink]) -> None:
    sink = make_sink(events_url=f"https://127.0.0.1:{free_port()}")
    with pytest.raises(DeliveryError) as caught:
        await sink.send(sink.render(triage())[0])
    assert not caught.value.permanent and not caught.value.unsure  # nothing was sent
    assert "cannot connect" in caught.value.reason


async def test_a_400_is_permanent_with_pagerdutys_message(
    sink: PagerDutySink, fake: FakePagerDuty
) -> None:
    fake.services.pop(ROUTING_KEY)  # the integration was deleted
    with pytest.raises(DeliveryError) as caught:
        await sink.send(sink.render(triage())[0])
    assert caught.value.permanent
    assert caught.value.reason == (
        "PagerDuty trigger event: HTTP 400: Event object is invalid: Invalid routing key"
    )
    assert len(fake.events()) == 1


async def test_rest_auth_failures_are_permanent(
    fake: FakePagerDuty, make_sink: Callable[..., PagerDutySink]
) -> None:
    sink = make_sink(api_token="u+wrongToken0000000000")
    trigger, note = sink.render(triage())
    await sink.send(trigger)
    with pytest.raises(DeliveryError) as caught:
        await sink.send(note)
    assert caught.value.permanent
    assert caught.value.reason == (
        "PagerDuty incident lookup: HTTP 401: Authentication required (check the API token)"
    )
    fake.fail("/incidents", 403, body={"error": {"message": "Access Denied", "code": 2010}})
    with pytest.raises(DeliveryError) as caught:
        await make_sink().send(note)
    assert caught.value.permanent and "HTTP 403: Access Denied" in caught.value.reason


async def test_an_untrusted_certificate_is_a_clear_error(
    fake: FakePagerDuty, make_sink: Callable[..., PagerDutySink]
) -> None:
    sink = make_sink(ca_file=None)
    with pytest.raises(DeliveryError) as caught:
        await sink.send(sink.render(triage())[0])
    assert "TLS certificate is not trusted" in caught.value.reason
    assert "set pagerduty.ca_file" in caught.value.reason
    assert fake.events() == []


async def test_ssl_cert_file_also_trusts_a_private_ca(
    server: FakePagerDutyServer,
    fake: FakePagerDuty,
    make_sink: Callable[..., PagerDutySink],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))
    sink = make_sink(ca_file=None)
    await sink.send(sink.render(triage())[0])
    assert len(fake.incidents) == 1


async def test_requests_ca_bundle_is_not_read(
    server: FakePagerDutyServer,
    make_sink: Callable[..., PagerDutySink],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The clients use httpx2, not requests: only SSL_CERT_FILE/SSL_CERT_DIR or ca_file work."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_file))
    sink = make_sink(ca_file=None)
    with pytest.raises(DeliveryError, match="not trusted"):
        await sink.send(sink.render(triage())[0])


async def test_secrets_never_appear_in_errors_or_logs(
    fake: FakePagerDuty, make_sink: Callable[..., PagerDutySink], caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    sink = make_sink(secrets=["extra-secret-value"])
    trigger, note = sink.render(triage())
    echo = {
        "status": "invalid event",
        "message": f"routing_key {ROUTING_KEY} is disabled; extra-secret-value",
        "errors": [f"token {API_TOKEN}"],
    }
    fake.fail("/v2/enqueue", 400, body=echo)
    reasons = []
    with pytest.raises(DeliveryError) as caught:
        await sink.send(trigger)
    reasons.append(caught.value.reason)
    await sink.send(trigger)
    fake.fail("/incidents", 500, body={"error": {"message": f"bad Token token={API_TOKEN}"}})
    with pytest.raises(DeliveryError) as caught:
        await sink.send(note)
    reasons.append(caught.value.reason)
    wrong = make_sink(api_token="u+wrongTokenABCDEFGHIJ")
    with pytest.raises(DeliveryError) as caught:
        await wrong.send(note)
    reasons.append(caught.value.reason)
    text = "\n".join(reasons) + caplog.text + json.dumps([d.payload for d in (trigger, note)])
    for secret in (ROUTING_KEY, API_TOKEN, "extra-secret-value", "u+wrongTokenABCDEFGHIJ"):
        assert secret not in text
    assert "is disabled" in reasons[0] and "HTTP 500" in reasons[1]


@pytest.mark.parametrize(
    ("incident", "reason"), [("A" * 70_000, "URL too long"), ("A\r\nB", "non-printable")]
)
async def test_a_url_that_cannot_be_sent_fails_for_good(incident: str, reason: str) -> None:
    client = pagerduty_http.rest_client(
        f"https://127.0.0.1:{free_port()}", API_TOKEN, "a@b.c", True, 2.0
    )
    with pytest.raises(DeliveryError) as caught:
        await pagerduty_http.call(
            "note", str, client.rpost, f"/incidents/{incident}/notes", json={}
        )
    assert caught.value.permanent and reason in caught.value.reason
