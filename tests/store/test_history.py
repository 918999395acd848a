"""An alert's own history, from the store, on a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from router.alerts import Alert, WebhookPayload, label_fingerprint
from router.config import Settings
from router.delivery import Delivery
from router.integrations.console import ConsoleSink
from router.integrations.pagerduty.render import custom_details, note_text
from router.service import build_pipeline, load_components
from router.store import Store, open_store
from router.store.history import History
from router.store.schema import alert_events, outbox, payloads
from router.triage import Finding, TriageResult, Verdict
from tests import factories
from tests.pg import fresh_database
from tests.store.conftest import FakeClock

LABELS = {"namespace": "shop", "pod": "api-1"}


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z")


async def fire(
    store: Store, clock: FakeClock, *, minutes: float | None, verdict: str | None = None,
    labels: dict[str, str] = LABELS,
) -> Alert:  # fmt: skip
    """One firing now (triaged, with ``verdict``), resolved ``minutes`` later; the clock moves on."""
    started = clock.now
    fingerprint = label_fingerprint(labels)
    firing = factories.alert(
        "PodCrashLooping", labels=labels, starts_at=_iso(started), fingerprint=fingerprint
    )
    await store.ingest(WebhookPayload.model_validate(factories.payload(firing)))
    (job,) = await store.claim("test", 10, 60)
    findings = [
        Finding(title="Rollout to revision 7", source="kubernetes",
                verdict=Verdict(summary=verdict, rule="rollout") if verdict else None),
    ]  # fmt: skip
    result = TriageResult.of(job).model_copy(update={"findings": findings})
    assert await store.complete(job, "test", result.model_dump_json(), [])
    if minutes is not None:
        clock.advance(minutes * 60)
        resolved = factories.alert(
            "PodCrashLooping", labels=labels, status="resolved", starts_at=_iso(started),
            ends_at=_iso(clock.now), fingerprint=fingerprint,
        )  # fmt: skip
        await store.ingest(WebhookPayload.model_validate(factories.payload(resolved)))
        (job,) = await store.claim("test", 10, 60)
        assert await store.complete(job, "test", TriageResult.of(job).model_dump_json(), [])
    clock.advance(3600)
    return Alert.model_validate(firing)


async def test_counts_durations_and_the_previous_verdict(store: Store, clock: FakeClock) -> None:
    await fire(store, clock, minutes=14, verdict="OOM killed")
    await fire(store, clock, minutes=6)
    await fire(store, clock, minutes=9, verdict="rolled back")
    current = await fire(store, clock, minutes=None)  # firing now
    history = await History(store.db, clock).of(current)
    assert history is not None
    assert (history.earlier, sorted(history.minutes_to_resolve)) == (3, [6.0, 9.0, 14.0])
    assert history.text == (
        "4th time in 7 days; resolved after 6\u201314 min (median 9); "
        "last time: Rollout to revision 7 → rolled back"
    )


async def test_firings_older_than_the_window_do_not_count(store: Store, clock: FakeClock) -> None:
    await fire(store, clock, minutes=5, verdict="too old")
    clock.advance(timedelta(days=7).total_seconds())
    await fire(store, clock, minutes=8)
    current = await fire(store, clock, minutes=None)
    history = await History(store.db, clock).of(current)
    assert history is not None
    assert history.text == "2nd time in 7 days; resolved after 8 min"


async def test_a_first_firing_has_no_history(store: Store, clock: FakeClock) -> None:
    current = await fire(store, clock, minutes=None)
    assert await History(store.db, clock).of(current) is None


async def test_a_new_fingerprint_gets_its_namesakes_in_the_same_namespace(
    store: Store, clock: FakeClock
) -> None:
    await fire(store, clock, minutes=12, verdict="OOM killed")
    await fire(store, clock, minutes=3, labels={"namespace": "billing", "pod": "api-1"})
    current = await fire(store, clock, minutes=None, labels={"namespace": "shop", "pod": "api-2"})
    history = await History(store.db, clock).of(current)
    assert history is not None
    assert history.text == (
        "2nd time in 7 days for PodCrashLooping in namespace shop; resolved after 12 min; "
        "last time: Rollout to revision 7 → OOM killed"
    )
    elsewhere = await fire(store, clock, minutes=None, labels={"namespace": "search", "pod": "x"})
    assert await History(store.db, clock).of(elsewhere) is None


async def test_a_stored_state_it_cannot_read_counts_without_its_details(
    store: Store, clock: FakeClock
) -> None:
    await fire(store, clock, minutes=5)
    current = await fire(store, clock, minutes=None)
    async with store.db.write() as conn:  # as a future version might have written it
        await conn.execute(
            alert_events.update()
            .where(alert_events.c.id == 1)
            .values(alert_json='{"status": 7, "labels": []}')
        )
    history = await History(store.db, clock).of(current)
    assert history is not None
    assert (history.earlier, history.minutes_to_resolve) == (2, [5.0])  # its resolve still reads


async def count(store: Store, table) -> int:
    async with store.db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def test_retention_deletes_old_finished_states_but_never_an_alerts_latest(
    store: Store, clock: FakeClock
) -> None:
    await fire(store, clock, minutes=10, verdict="old")  # two states, 31 days before the end
    clock.advance(timedelta(days=30).total_seconds())
    await fire(store, clock, minutes=4)
    other = {"namespace": "billing", "pod": "x"}
    await fire(store, clock, minutes=None, labels=other)  # latest state of another alert
    assert await count(store, alert_events) == 5
    assert await store.prune(max_age_days=30) == 2  # the first firing and its resolve
    assert await store.prune(max_age_days=30) == 0
    assert await count(store, alert_events) == 3
    assert await count(store, payloads) == 3
    # the other alert's only state is old too now, but it is that alert's latest: kept
    clock.advance(timedelta(days=60).total_seconds())
    assert await store.prune(max_age_days=30) == 1  # the firing before the latest resolve
    assert await count(store, alert_events) == 2


async def test_a_state_with_a_pending_delivery_is_kept(store: Store, clock: FakeClock) -> None:
    started = _iso(clock.now)
    firing = factories.alert("Disk", starts_at=started, fingerprint="d1")
    await store.ingest(WebhookPayload.model_validate(factories.payload(firing)))
    (job,) = await store.claim("test", 10, 60)
    delivery = Delivery(sink="console", action="print", key="console:d1", payload={})
    assert await store.complete(job, "test", TriageResult.of(job).model_dump_json(), [delivery])
    clock.advance(60)
    resolved = factories.alert("Disk", status="resolved", fingerprint="d1", starts_at=started)
    await store.ingest(WebhookPayload.model_validate(factories.payload(resolved)))
    clock.advance(timedelta(days=90).total_seconds())
    (job,) = await store.claim("test", 10, 60)
    assert await store.complete(job, "test", TriageResult.of(job).model_dump_json(), [])
    assert await store.prune(max_age_days=30) == 0  # the firing's delivery never went out
    assert await count(store, outbox) == 1


async def test_the_pipeline_puts_the_history_in_every_sinks_text(
    store: Store, clock: FakeClock
) -> None:
    await fire(store, clock, minutes=9, verdict="OOM killed")
    current = await fire(store, clock, minutes=None)
    settings = Settings()
    pipeline = build_pipeline(settings, load_components(settings), [], {}, History(store.db, clock))
    result = await pipeline.triage(TriageResult(alert=current))
    text = "2nd time in 7 days; resolved after 9 min; last time: Rollout to revision 7 → OOM killed"
    assert result.history is not None and result.history.text == text
    console = ConsoleSink(settings.templates, format="text").render_text(result)
    assert f"\n    history:  {text}\n" in console
    assert f"\nHistory: {text}\n" in note_text(result)
    assert custom_details(result)["history"] == text


@pytest.mark.postgres
async def test_namesakes_are_read_by_fingerprint_before_postgres_has_statistics(
    clock: FakeClock,
) -> None:
    """A new database in its first storm has no statistics yet; the namesakes' states
    must still come from the fingerprint index, not from every state since ``:since``."""
    async with fresh_database() as url:
        store = await open_store(url, clock=clock)
        try:
            for batch in range(4):
                alerts = [
                    factories.alert("PodCrashLooping", labels={"namespace": "shop", "pod": f"p{batch}-{i}"})
                    for i in range(500)
                ]  # fmt: skip
                await store.ingest(WebhookPayload.model_validate(factories.payload(*alerts)))
            statements: list[tuple[str, object]] = []

            def seen(_conn, _cursor, statement, parameters, _context, _many) -> None:
                statements.append((statement, parameters))

            event.listen(store.db.engine.sync_engine, "before_cursor_execute", seen)
            new = factories.alert("PodCrashLooping", labels={"namespace": "shop", "pod": "new"})
            await History(store.db, clock).of(Alert.model_validate(new))
            event.remove(store.db.engine.sync_engine, "before_cursor_execute", seen)
            (namesakes,) = [(s, p) for s, p in statements if "alerts.alertname" in s]
            async with store.db.read() as conn:
                plan = "\n".join(
                    row[0]
                    for row in await conn.exec_driver_sql(f"EXPLAIN {namesakes[0]}", namesakes[1])
                )
        finally:
            await store.close()
    assert "ix_alert_events_fingerprint" in plan, plan
    assert "ix_alert_events_received" not in plan and "Seq Scan on alert_events" not in plan, plan
