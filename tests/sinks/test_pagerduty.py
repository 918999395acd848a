"""The PagerDuty sink through the real ``pagerduty`` clients to a fake PagerDuty over HTTPS.

Every test asserts on the requests the fake received, as PagerDuty would see them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from router.alerts import Alert
from router.config import PagerDutySettings
from router.pipeline import Delivery
from router.sinks import DeliveryError
from router.sinks.pagerduty import PagerDutySink
from router.store import Store, open_store
from router.triage import (
    Classification,
    Evidence,
    Finding,
    Routing,
    RunbookExcerpt,
    RunbookLink,
    TriageResult,
    Verdict,
)
from tests import factories
from tests.harness.fake_pagerduty import API_TOKEN, FakePagerDuty, FakePagerDutyServer
from tests.procs import free_port

ROUTING_KEY = "R0DEFAULT0123456789abcdef012345"
DB_KEY = "R0DATABASES123456789abcdef01234"
FROM = "oncall-bot@example.com"
PERMALINK = "https://example.slack.com/archives/C024BE91L/p1700000000000100"
FINGERPRINT = "3f1c0de2a9b84e11"
DEDUP = f"runbook-router-{FINGERPRINT}"


@pytest.fixture
def fake() -> FakePagerDuty:
    return FakePagerDuty(services={ROUTING_KEY: "default", DB_KEY: "databases"})


@pytest.fixture
def server(fake: FakePagerDuty, tmp_path: Path) -> Iterator[FakePagerDutyServer]:
    running = FakePagerDutyServer(fake, tmp_path)
    yield running
    running.stop()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite:///{tmp_path / 'router.db'}")
    yield opened
    await opened.close()


def settings_for(server: FakePagerDutyServer, **overrides: Any) -> PagerDutySettings:
    values: dict[str, Any] = {
        "routing_key": ROUTING_KEY,
        "routing_keys": {"databases": DB_KEY},
        "events_url": server.url,
        "api_url": server.url,
        "api_token": API_TOKEN,
        "from": FROM,
        "ca_file": server.ca_file,
        "timeout_seconds": 2.0,
    }
    return PagerDutySettings.model_validate({**values, **overrides})


@pytest.fixture
async def make_sink(
    server: FakePagerDutyServer, store: Store
) -> AsyncIterator[Callable[..., PagerDutySink]]:
    """``make_sink(**settings)``: a sink on the fake, closed at the end of the test."""
    made: list[PagerDutySink] = []

    def make(secrets: list[str] | None = None, **overrides: Any) -> PagerDutySink:
        made.append(PagerDutySink(settings_for(server, **overrides), store, secrets or ()))
        return made[-1]

    yield make
    for sink in made:
        await sink.aclose()


@pytest.fixture
def sink(make_sink: Callable[..., PagerDutySink]) -> PagerDutySink:
    return make_sink()


def triage(
    status: str = "firing",
    *,
    starts_at: str = "2026-11-22T03:00:00Z",
    routing: Routing | None = None,
    annotations: dict[str, str] | None = None,
) -> TriageResult:
    raw = factories.alert(
        "PodCrashLooping",
        status=status,
        fingerprint=FINGERPRINT,
        starts_at=starts_at,
        labels={"namespace": "shop", "pod": "api-7d9c5-x2", "job": "api", "severity": "page"},
        annotations=annotations
        or {"summary": "api is restarting", "runbook_url": "https://runbooks.example/crashloop"},
        expr='rate(kube_pod_container_status_restarts_total{namespace="shop"}[5m]) > 0',
    )
    oom = RunbookLink(path="crashloop.md", anchor="oom", title="OOM killed", url=None)
    return TriageResult(
        alert=Alert.model_validate(raw),
        external_url="http://alertmanager:9093",
        receiver="runbook-router",
        group_key='{}:{alertname="PodCrashLooping"}',
        classification=Classification(
            category="crashloop",
            matched_by="rule",
            rule="crashloop",
            reasons=["rule crashloop matched alertname=~.*CrashLoop.*"],
            routing=routing or Routing(),
        ),
        runbook=RunbookExcerpt(
            link=RunbookLink(
                path="crashloop.md",
                anchor="crashloop",
                title="Crash loop",
                url="https://runbooks.example/crashloop",
            ),
            markdown="# Crash loop\n\nCheck the last termination reason.\n",
            subsections=[oom],
        ),
        findings=[
            Finding(title="Deployment api: 3/3 ready", source="kubernetes", severity="info"),
            Finding(
                title="api-7d9c5-x2 was OOM killed",
                source="kubernetes",
                severity="critical",
                evidence=[Evidence(kind="value", label="last exit code", value="137")],
                verdict=Verdict(
                    summary="OOMKilled: the memory limit is too low", rule="oom", runbook=oom
                ),
            ),
        ],
    )


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def by_action(deliveries: list[Delivery]) -> dict[str, Delivery]:
    return {d.action: d for d in deliveries}


async def test_lifecycle_trigger_note_resolve(
    sink: PagerDutySink, fake: FakePagerDuty, store: Store
) -> None:
    await store.messages.save(
        FINGERPRINT, "slack", {"channel": "C1", "ts": "1.0", "permalink": PERMALINK}
    )
    firing = by_action(sink.render(triage()))
    assert [firing["trigger"].key, firing["note"].key] == [
        f"pagerduty:event:{triage().alert.state_key}",
        f"pagerduty:note:{triage().alert.state_key}",
    ]

    assert await sink.send(firing["trigger"]) == {"dedup_key": DEDUP}
    (event,) = fake.events()
    assert event["routing_key"] == ROUTING_KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == DEDUP
    assert event["client"] == "runbook-router"
    assert event["client_url"] == "http://alertmanager:9093"
    payload = event["payload"]
    assert payload["summary"] == (
        "[FIRING] PodCrashLooping: api is restarting — crashloop: OOMKilled: the memory limit is too low"
    )
    assert payload["severity"] == "critical"  # severity=page
    assert payload["source"] == "api-7d9c5-x2"
    assert payload["component"] == "api"
    assert payload["group"] == "shop"
    assert payload["class"] == "crashloop"
    assert payload["timestamp"] == "2026-11-22T03:00:00+00:00"
    details = payload["custom_details"]
    assert details["labels"]["pod"] == "api-7d9c5-x2"
    assert details["annotations"]["summary"] == "api is restarting"
    assert details["classification"]["reasons"] == [
        "rule crashloop matched alertname=~.*CrashLoop.*"
    ]
    assert details["findings"][0] == {
        "title": "api-7d9c5-x2 was OOM killed",
        "source": "kubernetes",
        "severity": "critical",
        "verdict": "OOMKilled: the memory limit is too low",
        "runbook": "crashloop.md#oom",
        "evidence": "last exit code: 137",
    }
    assert details["runbook"]["excerpt"].startswith("# Crash loop")
    hrefs = {link["text"]: link["href"] for link in event["links"]}
    assert hrefs["Runbook: Crash loop"] == "https://runbooks.example/crashloop"
    assert hrefs["Slack thread"] == PERMALINK
    assert hrefs["Prometheus graph"].startswith("http://prometheus:9090/graph?g0.expr=")
    assert hrefs["Silence in Alertmanager"].startswith(
        "http://alertmanager:9093/#/silences/new?filter=%7Balertname%3D%22PodCrashLooping%22"
    )
    (incident,) = fake.by_key(DEDUP)
    assert incident.service == "default" and incident.status == "triggered"

    response = await sink.send(firing["note"])
    assert response is not None and response["incident_id"] == incident.id
    (lookup,) = fake.calls("GET", "/incidents")
    assert lookup.query == {"incident_key": [DEDUP]}
    (post,) = fake.calls("POST", f"/incidents/{incident.id}/notes")
    assert post.headers["from"] == FROM
    assert post.headers["authorization"] == f"Token token={API_TOKEN}"
    content = post.body["note"]["content"]
    assert set(post.body) == {"note"}
    assert "- [critical] api-7d9c5-x2 was OOM killed (kubernetes)" in content
    assert "Verdict: OOMKilled: the memory limit is too low" in content
    assert "Runbook: Crash loop <https://runbooks.example/crashloop>" in content
    assert f"Slack: <{PERMALINK}>" in content
    assert content.endswith(f"runbook-router delivery: {firing['note'].key}")
    assert incident.notes[0]["content"] == content
    ref = await store.messages.get(FINGERPRINT, "pagerduty")
    assert ref is not None and ref.pop("triggered_at") <= time.time()
    assert ref == {
        "dedup_key": DEDUP,
        "routing": None,
        "starts_at": "2026-11-22T03:00:00+00:00",
        "incident_id": incident.id,
    }

    (resolve,) = sink.render(triage("resolved"))
    assert resolve.action == "resolve" and resolve.key.startswith("pagerduty:event:")
    await sink.send(resolve)
    assert fake.events()[-1] == {
        "event_action": "resolve",
        "dedup_key": DEDUP,
        "routing_key": ROUTING_KEY,
    }
    assert incident.status == "resolved"
    assert len(fake.incidents) == 1


async def test_without_the_rest_api_there_is_no_note(
    make_sink: Callable[..., PagerDutySink],
) -> None:
    sink = make_sink(api_token=None)
    assert [d.action for d in sink.render(triage())] == ["trigger"]
    sink = make_sink(**{"from": None})
    assert [d.action for d in sink.render(triage())] == ["trigger"]


async def test_a_duplicate_trigger_is_one_incident_and_a_refire_is_a_new_one(
    sink: PagerDutySink, fake: FakePagerDuty
) -> None:
    first = by_action(sink.render(triage()))
    await sink.send(first["trigger"])
    await sink.send(first["trigger"])  # a re-send after a crash, say
    assert len(fake.events()) == 2 and len(fake.incidents) == 1
    await sink.send(first["note"])
    await sink.send(sink.render(triage("resolved"))[0])

    fake.incidents[0].created_at = "2026-11-22T03:00:04Z"  # when it fired first, in truth
    fake.hidden_lookups = 1  # and PagerDuty is slow to create the new one
    again = by_action(sink.render(triage(starts_at=now())))
    assert again["trigger"].key != first["trigger"].key
    await sink.send(again["trigger"])
    old, new = fake.incidents
    assert (old.status, new.status) == ("resolved", "triggered")
    assert old.incident_key == new.incident_key == DEDUP
    with pytest.raises(DeliveryError, match="not created yet"):
        await sink.send(again["note"])  # the old, resolved incident is not this firing's
    await sink.send(again["note"])
    assert len(old.notes) == 1 and len(new.notes) == 1


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
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        await sink.send(trigger)
    assert time.monotonic() - started < 1.0
    assert caught.value.retry_after == 7.0 and not caught.value.permanent
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
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        await sink.send(sink.render(triage())[0])
    assert time.monotonic() - started < 2.0
    assert not caught.value.permanent
    assert "timed out" in caught.value.reason


async def test_connection_refused_is_transient(make_sink: Callable[..., PagerDutySink]) -> None:
    sink = make_sink(events_url=f"https://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        await sink.send(sink.render(triage())[0])
    assert time.monotonic() - started < 1.0
    assert not caught.value.permanent
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


async def test_a_note_waits_for_the_incident_to_be_created(
    sink: PagerDutySink, fake: FakePagerDuty
) -> None:
    fake.hidden_lookups = 1  # PagerDuty has not created it yet at the first lookup
    trigger, note = sink.render(triage())
    await sink.send(trigger)
    with pytest.raises(DeliveryError) as caught:
        await sink.send(note)
    assert not caught.value.permanent and caught.value.retry_after == 5.0
    assert "not created yet" in caught.value.reason
    await sink.send(note)
    assert len(fake.incidents[0].notes) == 1


async def test_a_note_gives_up_when_there_will_be_no_incident(
    sink: PagerDutySink, fake: FakePagerDuty, store: Store
) -> None:
    trigger, note = sink.render(triage())
    with pytest.raises(DeliveryError) as caught:
        await sink.send(note)  # the trigger failed for good: nothing to annotate
    assert caught.value.permanent and "its trigger was not delivered" in caught.value.reason

    fake.hidden_lookups = 1000  # an event rule suppressed it, say
    await sink.send(trigger)
    with pytest.raises(DeliveryError) as caught:
        await sink.send(note)
    assert not caught.value.permanent
    ref = await store.messages.get(FINGERPRINT, "pagerduty")
    assert ref is not None
    await store.messages.save(FINGERPRINT, "pagerduty", {**ref, "triggered_at": time.time() - 121})
    with pytest.raises(DeliveryError) as caught:
        await sink.send(note)  # so the alert's resolve is not held up behind it
    assert caught.value.permanent and "no incident" in caught.value.reason


async def test_a_404_on_the_incident_is_transient(sink: PagerDutySink, fake: FakePagerDuty) -> None:
    trigger, note = sink.render(triage())
    await sink.send(trigger)
    fake.fail(f"/incidents/{fake.incidents[0].id}/notes", 404)
    with pytest.raises(DeliveryError) as caught:
        await sink.send(note)
    assert not caught.value.permanent and caught.value.retry_after == 5.0


async def test_already_delivered_finds_a_note_by_its_marker(
    sink: PagerDutySink, fake: FakePagerDuty
) -> None:
    trigger, note = sink.render(triage())
    assert await sink.already_delivered(trigger) is False  # events are idempotent: re-send
    assert await sink.already_delivered(note) is False  # no incident yet
    await sink.send(trigger)
    assert await sink.already_delivered(note) is False
    await sink.send(note)
    assert await sink.already_delivered(note) is True
    other = Delivery(note.sink, note.action, note.key + "x", note.payload)
    assert await sink.already_delivered(other) is False
    assert len(fake.calls("GET", f"/incidents/{fake.incidents[0].id}/notes")) == 3


async def test_named_routing_keys_per_rule(
    sink: PagerDutySink, fake: FakePagerDuty, caplog
) -> None:
    databases = Routing(pagerduty_routing_key="databases", pagerduty_severity={"page": "warning"})
    trigger, note = sink.render(triage(routing=databases))
    assert ROUTING_KEY not in json.dumps(trigger.payload) and DB_KEY not in json.dumps(
        trigger.payload
    )
    await sink.send(trigger)
    await sink.send(note)
    assert fake.events()[0]["routing_key"] == DB_KEY
    assert fake.events()[0]["payload"]["severity"] == "warning"
    # The resolve's rule lost its routing (a rules change, say): it still goes where the trigger went.
    await sink.send(sink.render(triage("resolved"))[0])
    assert fake.events()[-1]["routing_key"] == DB_KEY
    (incident,) = fake.incidents
    assert (incident.service, incident.status) == ("databases", "resolved")

    unknown = Routing(pagerduty_routing_key="nobody")
    with caplog.at_level(logging.WARNING):
        await sink.send(sink.render(triage(routing=unknown, starts_at="2026-11-22T06:00:00Z"))[0])
    assert fake.events()[-1]["routing_key"] == ROUTING_KEY
    assert "routing key 'nobody' is not configured" in caplog.text


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
