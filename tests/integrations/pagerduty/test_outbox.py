"""The PagerDuty sink behind the real workers and outbox: ingest → triage → PagerDuty."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest

from router.alerts import WebhookPayload
from router.config import WorkerSettings, load_settings
from router.integrations.pagerduty.sink import PagerDutySink
from router.metrics import Metrics
from router.service import build_pipeline, load_components
from router.store import Store
from router.worker import Workers
from tests import factories
from tests.harness.fake_pagerduty import API_TOKEN, FakePagerDuty, FakePagerDutyServer
from tests.harness.waiting import eventually
from tests.integrations.pagerduty.support import ROUTING_KEY, settings_for

FAST = WorkerSettings(count=2, lease_seconds=5, poll_seconds=0.05, shutdown_grace_seconds=0.5)
CRASHLOOP = {"namespace": "shop", "pod": "api-7d9c5-x2", "severity": "critical"}


@pytest.fixture
async def workers(server: FakePagerDutyServer, store: Store) -> AsyncIterator[Workers]:
    sink = PagerDutySink(settings_for(server), store)
    settings = load_settings()
    running = Workers(
        store, build_pipeline(settings, load_components(settings), [sink]), Metrics(), FAST
    )
    running.start()
    yield running
    await running.stop()
    await sink.aclose()


async def ingest(store: Store, workers: Workers, alert: dict) -> None:
    body = factories.body(alert)
    await store.ingest(WebhookPayload.model_validate_json(body))
    workers.wake()


async def test_fire_note_and_resolve_through_the_outbox(
    store: Store, workers: Workers, fake: FakePagerDuty
) -> None:
    firing = factories.alert("PodCrashLooping", labels=CRASHLOOP)
    await ingest(store, workers, firing)
    await eventually(lambda: bool(fake.incidents) and bool(fake.incidents[0].notes))
    (incident,) = fake.incidents
    assert incident.status == "triggered"
    assert "crashloop" in fake.events()[0]["payload"]["summary"]
    assert "runbook-router delivery: pagerduty:note:" in incident.notes[0]["content"]

    await ingest(store, workers, {**firing, "status": "resolved", "endsAt": "2026-11-22T10:30:00Z"})

    async def all_done() -> bool:
        return await store.outbox.counts() == {"done": 3}

    await eventually(all_done)
    assert incident.status == "resolved"
    rows = await store.outbox.rows()
    assert [(r["action"], r["state"], r["attempts"]) for r in rows] == [
        ("trigger", "done", 1),
        ("note", "done", 1),
        ("resolve", "done", 1),
    ]
    assert json.loads(rows[1]["response_json"])["incident_id"] == incident.id
    for row in rows:
        assert ROUTING_KEY not in row["payload_json"] and API_TOKEN not in row["payload_json"]


async def test_a_400_is_given_up_at_once_and_a_429_waits(
    store: Store, workers: Workers, fake: FakePagerDuty
) -> None:
    fake.fail(
        "/v2/enqueue", 400, body={"status": "invalid event", "message": "Event object is invalid"}
    )
    await ingest(store, workers, factories.alert("PodCrashLooping", labels=CRASHLOOP))

    async def settled() -> bool:
        rows = await store.outbox.rows()
        return bool(rows) and rows[0]["state"] == "dead"

    await eventually(settled)
    trigger = (await store.outbox.rows())[0]
    assert trigger["attempts"] == 1 and "Event object is invalid" in trigger["last_error"]
    assert len(fake.events()) == 1

    fake.fail("/v2/enqueue", 429, retry_after="120")
    before = time.time()
    await ingest(
        store,
        workers,
        factories.alert("PodCrashLooping", labels=CRASHLOOP, starts_at="2026-11-22T11:00:00Z"),
    )

    async def retried() -> bool:
        rows = await store.outbox.rows()
        return len(rows) > 2 and rows[2]["last_error"] is not None

    await eventually(retried)
    row = (await store.outbox.rows())[2]
    assert row["state"] == "pending" and row["next_attempt_at"] >= before + 120
    assert len(fake.events()) == 2
