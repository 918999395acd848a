"""Per-channel rate limiting and storm summaries, with a clock the tests move."""

from __future__ import annotations

import asyncio

import pytest

from router.config import BUILTIN_TEMPLATES
from router.delivery import DeliveryError
from router.integrations.slack.flow import RateLimiter
from router.integrations.slack.sink import SlackSink
from router.store import Store
from router.triage import Classification
from tests.harness.fake_slack import FakeSlack, settings_for, triage_result
from tests.harness.waiting import eventually


class FakeTime:
    """A clock that only moves when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Sleep by moving the clock (for the limiter, which sleeps in line)."""
        self.slept.append(round(seconds, 3))
        self.now += seconds
        await asyncio.sleep(0)

    async def wait(self, seconds: float) -> None:
        """Sleep until the test moves the clock that far (for background tasks)."""
        self.slept.append(round(seconds, 3))
        until = self.now + seconds
        while self.now < until:
            await asyncio.sleep(0.001)


@pytest.fixture
def fake(fake_slack: FakeSlack) -> FakeSlack:
    fake_slack.add_channel("#other", "C0OTHER01")
    return fake_slack


async def test_token_bucket_allows_a_burst_then_paces() -> None:
    clock = FakeTime()
    limiter = RateLimiter(1.0, 3, clock=clock, sleep=clock.sleep, max_wait=5.0)
    waits = [await limiter.acquire("#alerts") for _ in range(5)]
    assert waits == [0.0, 0.0, 0.0, 1.0, 1.0]
    assert await limiter.acquire("#other") == 0.0  # buckets are per channel
    clock.now += 10
    assert [await limiter.acquire("#alerts") for _ in range(3)] == [0.0, 0.0, 0.0]


async def test_a_long_wait_becomes_a_retry_after() -> None:
    clock = FakeTime()
    limiter = RateLimiter(0.5, 1, clock=clock, sleep=clock.sleep, max_wait=1.0)
    await limiter.acquire("#alerts")
    with pytest.raises(DeliveryError) as caught:
        await limiter.acquire("#alerts")
    assert not caught.value.permanent and caught.value.retry_after == pytest.approx(2.0)
    assert clock.slept == []


async def test_the_sink_paces_messages_per_channel(fake: FakeSlack, store: Store) -> None:
    clock = FakeTime()
    settings = settings_for(fake, rate_per_second=2, burst=2, storm_threshold_per_minute=100)
    sink = SlackSink(settings, store, BUILTIN_TEMPLATES, clock=clock, sleep=clock.sleep)
    for n in range(4):
        await sink.send(sink.render(triage_result(fingerprint=f"fp{n}"))[0])
    assert clock.slept == [0.5, 0.5]
    assert len(fake.top_level("#alerts")) == 4


async def test_a_storm_is_summarised_in_one_message_edited_at_most_every_few_seconds(
    fake: FakeSlack, store: Store
) -> None:
    clock = FakeTime()
    settings = settings_for(fake, storm_threshold_per_minute=3)
    sink = SlackSink(
        settings, store, BUILTIN_TEMPLATES, clock=clock, sleep=clock.wait, storm_edit_seconds=5
    )

    def alert(n: int, name: str = "PodCrashLooping") -> list:
        category = Classification(category="crashloop")
        return sink.render(triage_result(name=name, fingerprint=f"fp{n}", classification=category))

    for n in range(3):
        for delivery in alert(n):
            await sink.send(delivery)
    assert len(fake.top_level("#alerts")) == 3

    storm_deliveries = [alert(3), alert(4), alert(5, "HighLatency")]
    responses = [await sink.send(d[0]) for d in storm_deliveries]
    assert all(r is not None and "storm" in r for r in responses)
    top = fake.top_level("#alerts")
    assert len(top) == 4  # three alerts and one summary
    summary = top[-1]
    first = fake.requests("chat.postMessage")[-1].body
    assert "Alert storm: 1 more new alert*" in str(first["attachments"])
    assert fake.requests("chat.update") == []  # the next edit waits for the interval
    for deliveries in storm_deliveries:  # their replies are not posted one by one
        assert [await sink.send(d) for d in deliveries[1:]] == [
            {"skipped": "summarised in a storm"}
        ]

    await asyncio.sleep(0.05)
    assert fake.requests("chat.update") == []
    clock.now += 5  # the scheduled edit runs after five seconds
    await eventually(lambda: fake.requests("chat.update"), 1, "the scheduled edit", 0.005)
    await asyncio.sleep(0.05)
    updates = fake.requests("chat.update")
    assert len(updates) == 1 and updates[0].body["ts"] == summary["ts"]
    text = str(summary["attachments"])
    assert "Alert storm: 3 more new alerts*" in text
    assert "PodCrashLooping \u00d72, HighLatency \u00d71" in text and "crashloop \u00d73" in text
    assert clock.slept == [5.0]

    ref = await store.messages.get("fp4", "slack")
    assert ref == {"channel": "C0ALERTS1", "ts": summary["ts"], "storm": True}
    resolved = triage_result("resolved", name="PodCrashLooping", fingerprint="fp4")
    answer = await sink.send(sink.render(resolved)[0])
    assert answer is not None and answer["skipped"] == "summarised in a storm"
    assert answer["settles"] == [  # its thread replies are settled with it, not sent
        f"slack:reply:{resolved.alert.state_key}:",
        f"slack:graph:{resolved.alert.state_key}",
    ]

    clock.now += 120  # a quiet minute later, new alerts are posted on their own again
    await sink.send(alert(6)[0])
    assert len(fake.top_level("#alerts")) == 5
    await sink.aclose()


async def test_a_storm_in_one_channel_leaves_others_alone(fake: FakeSlack, store: Store) -> None:
    clock = FakeTime()
    sink = SlackSink(
        settings_for(fake, storm_threshold_per_minute=1),
        store,
        BUILTIN_TEMPLATES,
        clock=clock,
        sleep=clock.sleep,
    )
    await sink.send(sink.render(triage_result(fingerprint="a1"))[0])
    await sink.send(sink.render(triage_result(fingerprint="a2"))[0])
    other = settings_for(fake, default_channel="#other", storm_threshold_per_minute=1)
    sink.settings = other
    await sink.send(sink.render(triage_result(fingerprint="b1"))[0])
    assert len(fake.top_level("#alerts")) == 2  # one alert, one summary
    assert len(fake.top_level("#other")) == 1


async def test_a_storm_starts_on_alerts_offered_not_on_messages_the_limiter_let_through(
    fake: FakeSlack, store: Store
) -> None:
    """Ten new alerts at once, one message a second: three are posted, seven summarised,
    none is pushed back with a retry (which, at one message a second, would queue a
    storm for hours)."""
    clock = FakeTime()
    settings = settings_for(fake, storm_threshold_per_minute=3, rate_per_second=1, burst=1)
    sink = SlackSink(settings, store, BUILTIN_TEMPLATES, clock=clock, sleep=clock.sleep)
    publishes = [sink.render(triage_result(fingerprint=f"fp{n}"))[0] for n in range(10)]
    outcomes = await asyncio.gather(*map(sink.send, publishes), return_exceptions=True)
    assert not [o for o in outcomes if isinstance(o, BaseException)]
    assert sum(1 for o in outcomes if o and "storm" in o) == 7
    top = fake.top_level("#alerts")
    assert len(top) == 4  # three alerts and the summary
    await sink.flush_storms()
    assert "7 more new alerts" in str(fake.top_level("#alerts")[-1]["attachments"])
    await sink.aclose()
