"""Exactly once under real failures, in-process: workers, real store, the fake Slack and PagerDuty.

The fakes fail the way the real services do: they answer after the client gave up
(having done the work), answer 429 with ``Retry-After``, and keep their history.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from router.alerts import WebhookPayload
from router.config import WorkerSettings, load_settings
from router.delivery import Delivery, DeliveryError
from router.integrations.console import ConsoleSink
from router.integrations.pagerduty.sink import PagerDutySink
from router.integrations.slack.sink import SlackSink
from router.metrics import Metrics
from router.service import Components, build_pipeline, load_components
from router.store import Store, open_store
from router.worker import Workers
from tests import factories
from tests.harness.fake_pagerduty import FakePagerDuty, FakePagerDutyServer
from tests.harness.fake_slack import FakeSlack
from tests.harness.fake_slack import settings_for as slack_settings
from tests.harness.waiting import eventually
from tests.integrations.pagerduty.support import by_action, triage
from tests.integrations.pagerduty.support import settings_for as pagerduty_settings
from tests.pg import fresh_database

FAST = WorkerSettings(count=1, lease_seconds=4, poll_seconds=0.05, shutdown_grace_seconds=0.5)


@functools.cache
def components() -> Components:
    """Loaded once: loading them in a running replica's event loop would hold its
    heartbeats back for as long as it takes (a second under load, beyond a test's lease)."""
    return load_components(load_settings())


def quick(attempt: int) -> float:
    """Backoff for tests: retry at once (the behaviour under test is what a retry does)."""
    return 0.05


@pytest.fixture
def slack(fake_slack: FakeSlack) -> FakeSlack:
    fake_slack.add_channel("#db", "C0DBTEAM1")
    return fake_slack


@pytest.fixture
def pagerduty(
    fake_pagerduty: tuple[FakePagerDuty, FakePagerDutyServer],
) -> tuple[FakePagerDuty, FakePagerDutyServer]:
    return fake_pagerduty


@contextlib.asynccontextmanager
async def replica(
    store: Store, sinks: list[Any], name: str, options: WorkerSettings = FAST, **extra: Any
) -> AsyncIterator[Workers]:
    """One router's workers over ``store``, delivering to ``sinks`` (``extra``: Workers fields)."""
    settings = load_settings()
    pipeline = build_pipeline(settings, components(), sinks)
    workers = Workers(store, pipeline, Metrics(), options, owner=name, backoff=quick, **extra)
    workers.start()
    try:
        yield workers
    finally:
        await workers.stop()
        for sink in sinks:
            await sink.aclose()


async def ingest(store: Store, *alerts: dict[str, Any]) -> None:
    body = factories.body(*alerts)
    await store.ingest(WebhookPayload.model_validate_json(body))


async def settled(store: Store, timeout: float = 30.0) -> dict[str, int]:
    """Wait until no job and no delivery is left to do; the outbox's counts by state."""
    counts: dict[str, int] = {}

    async def idle() -> dict[str, int]:
        counts.clear()
        counts.update(await store.outbox.counts())
        busy = counts.get("pending", 0) + counts.get("sending", 0)
        return dict(counts) if counts and not busy and not await store.queue_depth() else {}

    return await eventually(idle, timeout, lambda: f"settled ({counts})", interval=0.05)


def alerts(n: int, prefix: str = "Load", **labels: str) -> list[dict[str, Any]]:
    return [
        factories.alert(f"{prefix}{i}", fingerprint=f"{prefix.lower()}{i:012x}", labels=labels)
        for i in range(n)
    ]


def top_level_posts(slack: FakeSlack) -> list[Any]:
    return [c for c in slack.requests("chat.postMessage") if "thread_ts" not in c.body]


# -- 1. a call that timed out but took effect --------------------------------------------


async def test_a_post_answered_after_the_client_timeout_is_not_posted_again(
    slack: FakeSlack, store: Store
) -> None:
    slack.answer_late("chat.postMessage", 2.5)  # the alert's message lands, the answer is late
    sink = SlackSink(slack_settings(slack, timeout_seconds=1), store, load_settings().templates)
    async with replica(store, [sink], "r1"):
        await ingest(store, factories.alert("DiskFull", fingerprint="d15cf0110000aaaa"))
        counts = await settled(store)
    assert counts.get("dead", 0) == 0
    assert len(slack.top_level("#alerts")) == 1
    assert len(top_level_posts(slack)) == 1  # the retry looked and found it: no second post
    assert slack.requests("conversations.history")
    (row,) = [r for r in await store.outbox.rows() if r["action"] == "publish"]
    assert row["attempts"] == 2 and '"recovered": true' in (row["response_json"] or "")
    ref = await store.messages.get("d15cf0110000aaaa", "slack")
    assert ref is not None and ref["ts"] == slack.top_level("#alerts")[0]["ts"]
    assert slack.thread("#alerts", ref["ts"])  # the replies went under the one message


async def test_a_note_answered_after_the_client_timeout_is_not_posted_again(
    pagerduty: tuple[FakePagerDuty, FakePagerDutyServer], store: Store
) -> None:
    fake, server = pagerduty
    fake.answer_late("POST /incidents/*/notes", 3.0)
    sink = PagerDutySink(pagerduty_settings(server, timeout_seconds=1.0), store)
    async with replica(store, [sink], "r1"):
        await ingest(store, factories.alert("DiskFull", fingerprint="d15cf0110000aaaa"))
        counts = await settled(store)
    assert counts == {"done": 2}
    (incident,) = fake.incidents
    assert len(incident.notes) == 1
    assert len(fake.calls("POST", f"/incidents/{incident.id}/notes")) == 1
    assert fake.calls("GET", f"/incidents/{incident.id}/notes")  # looked before re-posting


async def test_a_look_up_that_cannot_work_is_not_final_for_the_delivery(
    slack: FakeSlack, store: Store
) -> None:
    """No permission to read history: the message is posted again rather than lost."""
    slack.fail("chat.postMessage", status=500, error="internal_error")
    slack.fail("conversations.history", error="channel_not_found")
    sink = SlackSink(slack_settings(slack), store, load_settings().templates)
    async with replica(store, [sink], "r1"):
        await ingest(store, factories.alert("DiskFull", fingerprint="d15cf0110000aaaa"))
        counts = await settled(store)
    assert counts.get("dead", 0) == 0
    assert len(slack.requests("conversations.history")) == 1
    assert len(slack.top_level("#alerts")) == 1  # the 500 did nothing; the retry posted it


# -- 3. a 429 holds its whole scope, for every replica ------------------------------------


@pytest.mark.postgres
async def test_retry_after_holds_the_channel_for_every_delivery_of_both_replicas(
    slack: FakeSlack,
) -> None:
    """Replica one gets the 429 and stops; replica two (knowing only the database) holds."""
    async with fresh_database() as url:
        first, second = await open_store(url), await open_store(url)
        try:
            await ingest(first, *alerts(12))
            slack.fail("chat.postMessage", status=429, retry_after=5)
            templates = load_settings().templates
            paced = slack_settings(slack, rate_per_second=3, burst=1)  # posts keep coming
            async with replica(first, [SlackSink(paced, first, templates)], "r1"):
                await eventually(lambda: slack.requests("chat.postMessage"), what="a post")
                await asyncio.sleep(0.3)  # the 429 is answered; r1's other posts wait
            async with replica(second, [SlackSink(paced, second, templates)], "r2") as two:
                await ingest(second, *alerts(4, "Late"))
                await settled(second, timeout=60)
        finally:
            await first.close()
            await second.close()
    posts = slack.requests("chat.postMessage")
    limited = posts[0].at
    held = [p for p in posts if limited + 1.0 < p.at < limited + 4.9]
    assert held == [], f"{len(held)} posts within Retry-After"
    assert len(slack.top_level("#alerts")) == 16  # each alert once, all after the pause
    assert _delivered(two) > 0  # replica two did the work, and held


def _delivered(workers: Workers) -> float:
    return sum(
        sample.value
        for metric in workers.metrics.registry.collect()
        for sample in metric.samples
        if sample.name == "runbook_router_deliveries_total"
        and sample.labels.get("outcome") == "delivered"
    )


# -- 4. and 6. leases renewed while working; each delivery recorded as it finishes -------


class SlowSink:
    """A sink whose ``slow`` deliveries take ``seconds``; the others return at once."""

    name = "console"

    def __init__(self, seconds: float, slow: str) -> None:
        self.seconds, self.slow = seconds, slow
        self.sent: list[str] = []
        self.release = asyncio.Event()

    def render(self, result: Any) -> list[Delivery]:
        return [Delivery(self.name, "print", f"slow:{result.alert.state_key}", {})]

    async def send(self, delivery: Delivery) -> dict[str, Any]:
        self.sent.append(delivery.key)
        if self.slow in delivery.key:
            await asyncio.sleep(self.seconds)
        return {}

    async def already_delivered(self, delivery: Delivery) -> bool:
        return delivery.key in self.sent

    async def aclose(self) -> None:
        pass


async def test_a_delivery_longer_than_the_lease_is_not_taken_over(store: Store) -> None:
    options = WorkerSettings(count=1, lease_seconds=1.0, poll_seconds=0.05)
    sink = SlowSink(2.5, "slow0000")
    other = SlowSink(0, "-")
    await ingest(store, factories.alert("Slow", fingerprint="slow0000aaaabbbb"))
    async with replica(store, [sink], "r1", options):
        await eventually(lambda: sink.sent, what="the slow delivery to start")
        async with replica(store, [other], "r2", options):
            await settled(store)
    assert len(sink.sent) == 1 and other.sent == []  # renewed: never claimed by r2


async def test_each_delivery_is_recorded_as_it_finishes(store: Store) -> None:
    sink = SlowSink(3600, "slow0000")
    await ingest(store, factories.alert("Slow", fingerprint="slow0000aaaabbbb"), *alerts(5))
    async with replica(store, [sink], "r1"):

        async def five_done() -> bool:
            return (await store.outbox.counts()).get("done", 0) >= 5

        await eventually(five_done, 20, "five deliveries recorded")
        assert (await store.outbox.counts()).get("sending") == 1  # still in its call


# -- #12 item 9: one big backlog does not hold up everyone else ---------------------------


async def test_a_big_group_does_not_starve_the_next_alert(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "console.jsonl"
    await ingest(store, *alerts(300, "Storm"))
    await ingest(store, factories.alert("Lonely", fingerprint="10ne1y0000000000"))
    options = WorkerSettings(count=1, lease_seconds=5, poll_seconds=0.05)
    sinks = [ConsoleSink(load_settings().templates, path=path, format="json")]
    async with replica(store, sinks, "r1", options, batch=4):
        await settled(store, timeout=120)
    order = [line for line in path.read_text().splitlines() if line.strip()]
    lonely = next(i for i, line in enumerate(order) if "10ne1y0000000000" in line)
    assert len(order) == 301
    assert lonely < 10, f"the other group's alert was delivered {lonely}th"


async def test_a_pagerduty_429_holds_the_events_api_for_every_delivery(
    pagerduty: tuple[FakePagerDuty, FakePagerDutyServer], store: Store, tmp_path: Path
) -> None:
    fake, server = pagerduty
    fake.fail("/v2/enqueue", 429, retry_after="5")
    sink = PagerDutySink(pagerduty_settings(server, api_token=None), store)
    try:
        first = by_action(sink.render(triage()))["trigger"]
        other = by_action(sink.render(triage(starts_at="2026-11-22T04:00:00Z")))["trigger"]
        with pytest.raises(DeliveryError) as limited:
            await sink.send(first)
        assert limited.value.rate_limited and limited.value.retry_after == 5
        with pytest.raises(DeliveryError) as held:
            await sink.send(other)  # another delivery, same scope: not sent at all
        assert held.value.retry_after is not None and 4 < held.value.retry_after <= 5
        assert len(fake.calls("POST", "/v2/enqueue")) == 1
        other_replica = await open_store(f"sqlite:///{tmp_path / 'router.db'}")
        replica_sink = PagerDutySink(pagerduty_settings(server, api_token=None), other_replica)
        try:
            with pytest.raises(DeliveryError) as seen:
                await replica_sink.send(other)  # it knows of the pause only from the database
            assert seen.value.retry_after is not None and seen.value.retry_after > 4
        finally:
            await replica_sink.aclose()
            await other_replica.close()
        assert len(fake.calls("POST", "/v2/enqueue")) == 1
    finally:
        await sink.aclose()
