"""The store contract, run against both SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import json

import pytest
from sqlalchemy import inspect, select, text

from router.alerts import WebhookPayload
from router.delivery import Delivery
from router.store import Store, StoreUnavailable, open_store
from router.store.schema import LATEST_VERSION, alerts, payloads, schema_version
from tests import factories
from tests.pg import fresh_database


def parse(*alerts_: dict) -> WebhookPayload:
    return WebhookPayload.model_validate_json(factories.body(*alerts_))


async def test_migrates_and_records_version(store: Store, db_url: str) -> None:
    assert await store.schema_version() == LATEST_VERSION
    async with store.db.read() as conn:
        versions = (await conn.execute(select(schema_version.c.version))).scalars().all()
    assert versions == list(range(1, LATEST_VERSION + 1))
    # Opening again is a no-op, not a second migration.
    again = await open_store(db_url)
    assert await again.schema_version() == LATEST_VERSION
    await again.close()


async def test_version_6_indexes_namesakes_by_name_and_time(store: Store, db_url: str) -> None:
    async with store.db.write() as conn:  # the store as version 5 left it
        await conn.execute(text("DROP INDEX ix_alerts_alertname_updated"))
        await conn.execute(text("CREATE INDEX ix_alerts_alertname ON alerts (alertname)"))
        await conn.execute(schema_version.delete().where(schema_version.c.version >= 6))
    reopened = await open_store(db_url)  # migrates
    async with reopened.db.read() as conn:
        indexes = await conn.run_sync(lambda sync: inspect(sync).get_indexes("alerts"))
    await reopened.close()
    by_name = {i["name"]: i["column_names"] for i in indexes}
    assert by_name["ix_alerts_alertname_updated"] == ["alertname", "updated_at"]
    assert "ix_alerts_alertname" not in by_name


OPEN_ROW_INDEXES = {"alert_events": "ix_alert_events_open", "outbox": "ix_outbox_open",
                    "retriages": "ix_retriages_open"}  # fmt: skip


@pytest.mark.postgres
async def test_version_7_indexes_the_unfinished_rows_of_each_leased_table() -> None:
    async with fresh_database() as url:
        store = await open_store(url)
        async with store.db.write() as conn:  # the store as version 6 left it
            for name in OPEN_ROW_INDEXES.values():
                await conn.execute(text(f"DROP INDEX {name}"))
            await conn.execute(schema_version.delete().where(schema_version.c.version == 7))
        await store.close()
        reopened = await open_store(url)  # migrates
        async with reopened.db.read() as conn:
            for table, name in OPEN_ROW_INDEXES.items():
                indexes = await conn.run_sync(lambda sync, t=table: inspect(sync).get_indexes(t))
                assert {i["name"]: i["column_names"] for i in indexes}[name] == ["id"]
        await reopened.close()


async def test_a_claim_reads_the_unfinished_rows_not_every_finished_one(
    store: Store, clock
) -> None:
    alerts = [
        factories.alert("A", labels={"pod": f"p{i}"}, fingerprint=f"f{i}") for i in range(3000)
    ]
    await store.ingest(parse(*alerts))
    async with store.db.write() as conn:  # most jobs finished long ago, a few still waiting
        await conn.execute(text("UPDATE alert_events SET state = 'done' WHERE id <= 2990"))
        if store.db.is_postgres:
            await conn.execute(text("ANALYZE alert_events"))
    plan = await _claim_plan(store, clock.now)
    assert [job.id for job in await store.claim("w", 16, 60)] == list(range(2991, 3001))
    if store.db.is_postgres:
        assert any("ix_alert_events_open " in line for line in plan), "\n".join(plan)
        walks = [
            line
            for line, after in itertools.pairwise(plan)
            if "using alert_events_pkey" in line and "Index Cond" not in after
        ]
        assert not walks, "\n".join(plan)
    else:  # scans only over the index of open rows; the runnable ones searched by state
        scans = [line for line in plan if "SCAN alert_events" in line]
        assert scans and all("ix_alert_events_open_groups" in line for line in scans), plan
        assert any("ix_alert_events_claim (state=?" in line for line in plan), plan


async def _claim_plan(store: Store, now: float) -> list[str]:
    """The lines of the database's plan for the job claim at ``now``."""
    from router.store.leases import _claim_statements
    from router.store.schema import JOB_STATES, alert_events

    query, _ = _claim_statements(
        alert_events, JOB_STATES, "available_at", ("fingerprint",), "group_key"
    )
    dialect = store.db.engine.dialect
    sql = query.params(now=now, limit=16).compile(
        dialect=dialect, compile_kwargs={"literal_binds": True}
    )
    explain = "EXPLAIN " if store.db.is_postgres else "EXPLAIN QUERY PLAN "
    async with store.db.read() as conn:
        rows = await conn.exec_driver_sql(explain + str(sql))
        return [str(row[-1]) for row in rows]


async def test_ingest_is_idempotent_per_alert_state(store: Store) -> None:
    a, b = factories.alert("A"), factories.alert("B")
    first = await store.ingest(parse(a, b))
    assert (first.new, first.duplicates) == (2, 0)
    again = await store.ingest(parse(a, b))
    assert (again.new, again.duplicates) == (0, 2)
    assert await store.queue_depth() == 2


async def test_state_changes_are_new_work(store: Store) -> None:
    firing = factories.alert("A")
    await store.ingest(parse(firing))
    resolved = factories.alert("A", status="resolved", ends_at="2026-11-22T10:20:00Z")
    refired = factories.alert("A", starts_at="2026-11-22T11:00:00Z")
    assert (await store.ingest(parse(resolved))).new == 1
    assert (await store.ingest(parse(resolved))).new == 0
    assert (await store.ingest(parse(refired))).new == 1
    assert await store.queue_depth() == 3


async def test_latest_state_tracks_newest_event(store: Store) -> None:
    await store.ingest(parse(factories.alert("A")))
    await store.ingest(parse(factories.alert("A", status="resolved")))
    async with store.db.read() as conn:
        row = (await conn.execute(select(alerts))).one()
    assert (row.alertname, row.status) == ("A", "resolved")


async def test_concurrent_identical_ingests_create_one_job(store: Store) -> None:
    payload = parse(factories.alert("A"), factories.alert("B"))
    results = await asyncio.gather(*(store.ingest(payload) for _ in range(20)))
    assert sum(r.new for r in results) == 2
    assert sum(r.duplicates for r in results) == 38


async def test_claim_leases_and_expired_lease_is_reclaimed(store: Store, clock) -> None:
    await store.ingest(parse(factories.alert("A"), factories.alert("B")))
    jobs = await store.claim("w1", 10, lease_seconds=30)
    assert [j.alert.alertname for j in jobs] == ["A", "B"]
    assert jobs[0].receiver == "runbook-router"
    assert await store.claim("w2", 10, lease_seconds=30) == []
    clock.advance(31)
    reclaimed = await store.claim("w2", 10, lease_seconds=30)
    assert [j.id for j in reclaimed] == [j.id for j in jobs]
    assert all(j.attempts == 2 for j in reclaimed)
    # The first worker lost its lease: its completion must not count.
    assert not await store.complete(jobs[0], "w1", "{}", [])
    assert await store.complete(reclaimed[0], "w2", "{}", [])
    assert await store.queue_depth() == 1


async def test_jobs_of_one_alert_run_in_order(store: Store) -> None:
    await store.ingest(parse(factories.alert("A")))
    await store.ingest(parse(factories.alert("A", status="resolved")))
    first = await store.claim("w1", 10, 30)
    assert [j.alert.status for j in first] == ["firing"]
    assert await store.claim("w2", 10, 30) == []  # the resolve waits for its trigger
    await store.complete(first[0], "w1", "{}", [])
    second = await store.claim("w2", 10, 30)
    assert [j.alert.status for j in second] == ["resolved"]


async def test_concurrent_claims_never_share_a_job(store: Store) -> None:
    await store.ingest(parse(*(factories.alert(f"A{i}") for i in range(30))))
    batches = await asyncio.gather(*(store.claim(f"w{i}", 4, 30) for i in range(10)))
    ids = [j.id for batch in batches for j in batch]
    assert len(ids) == len(set(ids)) == 30


async def test_a_claim_gives_every_group_its_turn_behind_a_big_one(store: Store) -> None:
    for name, count in (("Big", 20), ("Small", 3), ("Lone", 1)):  # one group each
        await store.ingest(
            parse(*(factories.alert(name, fingerprint=f"{name}-{i}") for i in range(count)))
        )
    claimed = [job.alert.alertname for job in await store.claim("w1", 4, 30)]
    assert sorted(claimed) == ["Big", "Big", "Lone", "Small"]
    again = [job.alert.alertname for job in await store.claim("w2", 4, 30)]
    assert sorted(again) == ["Big", "Big", "Big", "Small"]  # the lone group has no more


async def test_retry_then_fail_after_max_attempts(store: Store, clock) -> None:
    await store.ingest(parse(factories.alert("A")))
    job = (await store.claim("w1", 1, 30))[0]
    assert await store.retry_later(job, "w1", "boom", delay=5, max_attempts=2) == "pending"
    assert await store.claim("w1", 1, 30) == []  # not before the delay
    clock.advance(5)
    job = (await store.claim("w1", 1, 30))[0]
    assert await store.retry_later(job, "w1", "boom", delay=5, max_attempts=2) == "failed"
    clock.advance(60)
    assert await store.claim("w1", 1, 30) == []
    assert await store.states() == {"failed": 1}


async def test_release_returns_job_without_counting_attempt(store: Store) -> None:
    await store.ingest(parse(factories.alert("A")))
    job = (await store.claim("w1", 1, 30))[0]
    await store.release("w1", [job])
    again = (await store.claim("w2", 1, 30))[0]
    assert again.id == job.id and again.attempts == 1


async def test_complete_writes_outbox_once(store: Store) -> None:
    await store.ingest(parse(factories.alert("A")))
    job = (await store.claim("w1", 1, 30))[0]
    deliveries = [Delivery("console", "print", f"console:{job.alert.state_key}", {"text": "hi"})]
    assert await store.complete(job, "w1", '{"ok": true}', deliveries)
    rows = await store.outbox.rows()
    assert [(r["sink"], r["action"], r["state"]) for r in rows] == [("console", "print", "pending")]


async def test_outbox_orders_per_alert_and_sink(store: Store, clock) -> None:
    await store.ingest(parse(factories.alert("A")))
    await store.ingest(parse(factories.alert("A", status="resolved")))
    for status in ("trigger", "resolve"):
        job = (await store.claim("w", 1, 30))[0]
        await store.complete(job, "w", "{}", [Delivery("pd", status, f"pd:{status}", {})])
    first = await store.outbox.claim("d1", 10, 30)
    assert [i.delivery.action for i in first] == ["trigger"]
    await store.outbox.retry_at(first[0], "d1", clock.now + 10, "HTTP 500")
    assert await store.outbox.claim("d1", 10, 30) == []  # resolve still waits
    clock.advance(10)
    retried = await store.outbox.claim("d1", 10, 30)
    assert [i.delivery.action for i in retried] == ["trigger"]
    assert retried[0].attempts == 2
    await store.outbox.done(retried[0], "d1", {"status": "success"})
    assert [i.delivery.action for i in await store.outbox.claim("d1", 10, 30)] == ["resolve"]


async def test_outbox_give_up_unblocks_later_rows(store: Store) -> None:
    await store.ingest(parse(factories.alert("A")))
    job = (await store.claim("w", 1, 30))[0]
    await store.complete(
        job, "w", "{}", [Delivery("s", "a", "k1", {}), Delivery("s", "b", "k2", {})]
    )
    (item,) = await store.outbox.claim("d", 10, 30)
    await store.outbox.give_up(item, "d", "channel_not_found")
    assert await store.outbox.counts() == {"dead": 1, "pending": 1}
    assert [i.delivery.key for i in await store.outbox.claim("d", 10, 30)] == ["k2"]


async def test_a_delivery_settles_the_ones_it_made_unnecessary(store: Store) -> None:
    await store.ingest(parse(factories.alert("A"), factories.alert("B")))
    jobs = await store.claim("w", 2, 30)
    for job in jobs:  # the same keys per alert, so only the alert may tell them apart
        keys = ["post", "reply:1", "reply:2", "replyall"]
        deliveries = [
            Delivery("s", k.split(":")[0], f"{k}@{job.alert.alertname}", {}) for k in keys
        ]
        deliveries.append(Delivery("other", "reply", f"reply:1@{job.alert.alertname}/o", {}))
        await store.complete(job, "w", "{}", deliveries)
    claimed = await store.outbox.claim("d", 10, 30)
    post = next(i for i in claimed if i.delivery.key == "post@A")
    await store.outbox.done(post, "d", {"ok": True, "settles": ["reply:1@A", "reply:2"]})
    rows = {(r["sink"], r["key"]): r for r in await store.outbox.rows()}
    assert rows[("s", "post@A")]["response_json"] == '{"ok": true}'
    assert rows[("s", "reply:1@A")]["state"] == "done"  # prefix matched, same alert and sink
    assert rows[("s", "reply:2@A")]["state"] == "done"
    assert "settled with post@A" in rows[("s", "reply:2@A")]["response_json"]
    assert rows[("s", "replyall@A")]["state"] == "pending"  # no prefix of it was given
    assert rows[("s", "reply:2@B")]["state"] != "done"  # another alert
    assert rows[("other", "reply:1@A/o")]["state"] != "done"  # another sink (claimed)


async def test_unreachable_postgres_is_unavailable_not_an_error() -> None:
    with pytest.raises(StoreUnavailable) as info:
        await open_store("postgresql://router:s3cret-pw@127.0.0.1:1/x", connect_timeout=1)
    assert "s3cret-pw" not in str(info.value)


async def test_sqlite_file_in_wal_mode(tmp_path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'deep' / 'router.db'}")
    async with store.db.read() as conn:
        mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
    await store.close()
    assert mode == "wal"
    assert (tmp_path / "deep" / "router.db").exists()


async def test_outbox_marks_items_whose_sender_died(store: Store, clock) -> None:
    await store.ingest(parse(factories.alert("A")))
    job = (await store.claim("w", 1, 30))[0]
    await store.complete(job, "w", "{}", [Delivery("s", "post", "k1", {})])
    (first,) = await store.outbox.claim("d1", 10, lease_seconds=30)
    assert not first.interrupted
    clock.advance(31)  # d1 died mid-call: its lease runs out
    (again,) = await store.outbox.claim("d2", 10, lease_seconds=30)
    assert again.interrupted and again.attempts == 2
    await store.outbox.retry_at(again, "d2", clock.now, "HTTP 503")
    (third,) = await store.outbox.claim("d2", 10, lease_seconds=30)
    assert not third.interrupted  # a recorded failure is not an interruption


async def test_messages_remember_where_an_alert_was_posted(store: Store) -> None:
    assert await store.messages.get("fp1", "slack") is None
    await store.messages.save("fp1", "slack", {"channel": "C1", "ts": "1.000"})
    await store.messages.save("fp1", "slack", {"channel": "C1", "ts": "1.000", "permalink": "p"})
    await store.messages.save("fp1", "pagerduty", {"incident": "PABC"})
    assert await store.messages.get("fp1", "slack") == {
        "channel": "C1",
        "ts": "1.000",
        "permalink": "p",
    }
    assert await store.messages.get("fp1", "pagerduty") == {"incident": "PABC"}


async def test_concurrent_distinct_ingests_are_committed_together(store: Store) -> None:
    payloads = [parse(factories.alert(f"A{i}"), factories.alert(f"B{i}")) for i in range(30)]
    results = await asyncio.gather(*(store.ingest(p) for p in payloads))
    assert [(r.new, r.duplicates) for r in results] == [(2, 0)] * 30
    assert len({r.payload_id for r in results}) == 30
    assert await store.queue_depth() == 60


async def test_a_group_commit_keeps_each_webhook_apart_and_the_newest_state_wins(
    store: Store,
) -> None:
    """One batch: a firing and a resolve of the same alert, a re-send of it, a second alert."""
    firing = factories.alert("A", fingerprint="a0000000000000a1")
    resolved = {**firing, "status": "resolved", "endsAt": "2026-11-22T10:30:00Z"}
    results = await asyncio.gather(
        store.ingest(parse(firing)),
        store.ingest(parse(resolved, factories.alert("B"))),
        store.ingest(parse(firing)),
    )
    assert [(r.new, r.duplicates) for r in results] == [(1, 0), (2, 0), (0, 1)]
    latest = await store.lookup.latest_state("a0000000000000a1")
    assert latest is not None and latest.alert.status == "resolved"
    async with store.db.read() as conn:
        bodies = (await conn.execute(select(payloads.c.id, payloads.c.body))).all()
    assert sorted(id_ for id_, _ in bodies) == sorted(r.payload_id for r in results)
    for _, body in bodies:  # the envelope: each alert is stored once, in its own row
        envelope = json.loads(body)
        assert "alerts" not in envelope and envelope["receiver"] == "runbook-router"


async def test_a_failed_group_commit_fails_every_waiting_request(tmp_path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'r.db'}")
    await store.db.engine.dispose()
    for leftover in tmp_path.glob("r.db*"):
        leftover.unlink()  # the database file is gone: the next connection finds no tables
    results = await asyncio.gather(
        *(store.ingest(parse(factories.alert(f"A{i}"))) for i in range(3)),
        return_exceptions=True,
    )
    await store.close()
    assert all(isinstance(r, StoreUnavailable) for r in results), results
