"""The PagerDuty sink's events and notes, through the real ``pagerduty`` clients to a fake
PagerDuty over HTTPS; every test asserts on the requests the fake received."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import pytest

from router.delivery import Delivery, DeliveryError
from router.integrations.pagerduty.sink import PagerDutySink
from router.store import Store
from router.triage import (
    Routing,
)
from tests.harness.fake_pagerduty import API_TOKEN, FakePagerDuty
from tests.integrations.pagerduty.support import (
    DB_KEY,
    DEDUP,
    FINGERPRINT,
    FROM,
    PERMALINK,
    ROUTING_KEY,
    by_action,
    now,
    triage,
)


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
    assert details["runbook"]["why"] == "rule crashloop names this section"
    assert details["runbook"]["filled"] == "Filled from the alert: namespace=shop"
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
    assert lookup.query == {"incident_key": [DEDUP], "date_range": ["all"]}
    (post,) = fake.calls("POST", f"/incidents/{incident.id}/notes")
    assert post.headers["from"] == FROM
    assert post.headers["authorization"] == f"Token token={API_TOKEN}"
    content = post.body["note"]["content"]
    assert set(post.body) == {"note"}
    assert "- [critical] api-7d9c5-x2 was OOM killed (kubernetes)" in content
    assert "Verdict: OOMKilled: the memory limit is too low" in content
    assert "Runbook: Crash loop <https://runbooks.example/crashloop>" in content
    assert "\nWhy this section: rule crashloop names this section\n" in content
    assert "\nFilled from the alert: namespace=shop\n" in content
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


async def test_a_note_is_found_on_an_incident_older_than_a_month(
    sink: PagerDutySink, fake: FakePagerDuty
) -> None:
    trigger, note = sink.render(triage())
    await sink.send(trigger)
    await sink.send(note)
    fake.incidents[0].created_at = "2026-09-01T00:00:00Z"  # PagerDuty's default lists 30 days
    assert await sink.already_delivered(note) is True


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
