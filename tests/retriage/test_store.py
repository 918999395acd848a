"""Look-ups and re-triage records in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from router.alerts import WebhookPayload
from router.delivery import Delivery
from router.retriage import resolve
from router.store import Store, open_store
from router.triage import Classification, TriageResult
from tests import factories
from tests.pg import fresh_database
from tests.store.conftest import FakeClock

NOW = 1_800_000_000.0


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def store(request, tmp_path) -> AsyncIterator[Store]:
    clock = FakeClock(NOW)
    if request.param == "sqlite":
        opened = await open_store(f"sqlite:///{tmp_path / 'router.db'}", clock=clock)
        yield opened
        await opened.close()
        return
    async with fresh_database() as url:
        opened = await open_store(url, clock=clock)
        yield opened
        await opened.close()


async def ingest(store: Store, *alerts: dict) -> None:
    body = factories.body(*alerts)
    await store.ingest(WebhookPayload.model_validate_json(body))


async def triage_all(store: Store, category: str = "crashloop") -> None:
    """Finish every pending job with a result of ``category``."""
    jobs = await store.claim("test", 100, 60)
    for job in jobs:
        result = TriageResult(alert=job.alert, classification=Classification(category=category))
        assert await store.complete(job, "test", result.model_dump_json(), [])


async def test_resolving_each_form(store: Store) -> None:
    await ingest(store, factories.alert("PodCrashLooping", fingerprint="c0ffee0000000001"))
    await ingest(store, factories.alert("DiskFull", fingerprint="c0ffee1111111112"))
    await ingest(
        store,
        factories.alert("PodCrashLooping", fingerprint="abcdef0000000003", labels={"pod": "b"}),
    )
    lookup = store.lookup
    assert (await resolve(lookup, "c0ffee0000000001")).via == "fingerprint"
    prefix = await resolve(lookup, "c0ffee1")
    assert (prefix.via, prefix.alert and prefix.alert.alertname) == (
        "fingerprint prefix",
        "DiskFull",
    )
    ambiguous = await resolve(lookup, "c0ffee")
    assert ambiguous.alert is None and len(ambiguous.others) == 2
    assert "start of 2 fingerprints" in (ambiguous.problem or "")
    named = await resolve(lookup, "podcrashlooping")
    assert named.via == "alert name" and named.alert is not None
    assert {named.alert.fingerprint, *(o.fingerprint for o in named.others)} == {
        "c0ffee0000000001",
        "abcdef0000000003",
    }
    assert (await resolve(lookup, "#12")).problem == "No alert of ours has incident #12."
    assert (await resolve(lookup, "Nope")).problem == "No alert matches `Nope`."
    assert (await resolve(lookup, "c0ffee%")).alert is None  # no wildcards


async def test_a_firing_alert_is_preferred_over_a_newer_resolved_one(store: Store) -> None:
    await ingest(store, factories.alert("Flappy", fingerprint="aaaa000000000001"))
    await ingest(store, factories.alert("Flappy", fingerprint="bbbb000000000002"))
    await ingest(
        store, factories.alert("Flappy", fingerprint="bbbb000000000002", status="resolved")
    )
    found = await resolve(store.lookup, "Flappy")
    assert found.alert is not None and found.alert.fingerprint == "aaaa000000000001"
    assert [(o.fingerprint, o.status) for o in found.others] == [("bbbb000000000002", "resolved")]


async def test_incidents_by_number_and_id(store: Store) -> None:
    await ingest(store, factories.alert("PodCrashLooping", fingerprint="c0ffee0000000001"))
    lookup = store.lookup
    assert await lookup.known("c0ffee0000000001")
    assert not await lookup.known("0000000000000000")
    await lookup.remember_incident(
        "PABC123", 42, "runbook-router-c0ffee0000000001", "c0ffee0000000001"
    )
    await lookup.remember_incident(
        "PABC123", 42, "runbook-router-c0ffee0000000001", "c0ffee0000000001"
    )
    assert (await resolve(lookup, "#42")).via == "PagerDuty incident"
    assert (await resolve(lookup, "pabc123")).via == "PagerDuty incident"
    # an incident the PagerDuty sink noted, without any webhook
    ref = {"dedup_key": "runbook-router-c0ffee0000000001", "incident_id": "Q0NOTED1"}
    await store.messages.save("c0ffee0000000001", "pagerduty", ref)
    assert await lookup.by_incident_id("Q0NOTED1") == "c0ffee0000000001"
    assert await lookup.by_incident_id("Q0NOTED") is None
    assert await lookup.by_incident_id("Q0%") is None


async def test_active_alerts_with_category_and_start(store: Store) -> None:
    await ingest(store, factories.alert("A", fingerprint="a000000000000001"))
    await triage_all(store, "latency")
    store.clock.advance(60)  # type: ignore[attr-defined]
    await ingest(store, factories.alert("B", fingerprint="b000000000000002"))
    await ingest(store, factories.alert("C", fingerprint="c000000000000003", status="resolved"))
    active = await store.lookup.active()
    assert [(a.alertname, a.category) for a in active] == [("B", None), ("A", "latency")]
    assert {a.starts_at for a in active} == {datetime(2026, 11, 22, 10, tzinfo=UTC)}


async def test_records_are_idempotent_and_finish_with_their_deliveries(store: Store) -> None:
    await ingest(store, factories.alert("A", fingerprint="a000000000000001"))
    await triage_all(store)
    alert = await store.lookup.by_fingerprint("a000000000000001")
    assert alert is not None
    ack = Delivery("slack_response", "respond", "ack:1", {"response_url": "u"})
    recorded = await store.retriages.record(
        "slack:T1",
        source="slack",
        fingerprint=alert.fingerprint,
        event_id=alert.event_id,
        request={"key": "slack:T1"},
        deliveries=[ack],
    )
    assert recorded is not None
    again = await store.retriages.record(
        "slack:T1",
        source="slack",
        fingerprint=alert.fingerprint,
        event_id=alert.event_id,
        request={},
        deliveries=[Delivery("slack_response", "respond", "ack:2", {})],
    )
    assert again is None
    assert [r["key"] for r in await store.outbox.rows()] == ["ack:1"]
    assert [p.key for p in await store.retriages.claim("w1", 10, 20)] == ["slack:T1"]
    assert await store.retriages.claim("w2", 10, 20) == []  # held under w1's lease

    state = await store.lookup.latest_state(alert.fingerprint)
    assert state is not None and state.last_run_at == NOW
    assert not await store.retriages.note_queued_since(alert.event_id, NOW)
    store.clock.advance(30)  # type: ignore[attr-defined]
    fresh = TriageResult(alert=state.alert, classification=Classification(category="fresh"))
    note = Delivery("pagerduty", "note", "note:1", {})
    await store.retriages.finish(
        recorded, result_json=fresh.model_dump_json(), deliveries=[note], outcome="ok"
    )
    state = await store.lookup.latest_state(alert.fingerprint)
    assert state is not None and state.last_run_at == NOW + 30
    assert (
        TriageResult.model_validate_json(state.result_json or "").classification.category == "fresh"
    )
    assert await store.retriages.note_queued_since(alert.event_id, NOW + 30)
    assert await store.retriages.claim("w2", 10, 20) == []  # finished, though w1's lease ran out
    rows = await store.outbox.rows()
    assert [(r["key"], r["event_id"], r["fingerprint"]) for r in rows] == [
        ("ack:1", alert.event_id, alert.fingerprint),
        ("note:1", alert.event_id, alert.fingerprint),
    ]
