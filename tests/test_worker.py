"""Workers and the outbox dispatcher, in-process, over a real SQLite store."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from router.alerts import WebhookPayload
from router.config import WorkerSettings, load_settings
from router.delivery import REASONS, Delivery, DeliveryError
from router.integrations.console import ConsoleSink
from router.metrics import Metrics
from router.pipeline import Pipeline
from router.service import build_pipeline, load_components
from router.store import Store
from router.triage import Diagnosis, TriageResult
from router.worker import Workers
from tests import factories
from tests.harness.waiting import eventually

FAST = WorkerSettings(count=2, lease_seconds=5, poll_seconds=0.05, shutdown_grace_seconds=0.5)


@pytest.fixture
def console_path(tmp_path: Path) -> Path:
    return tmp_path / "console.jsonl"


def pipeline_with(sinks: list[Any], diagnoser: Any | None = None) -> Pipeline:
    settings = load_settings()
    pipeline = build_pipeline(settings, load_components(settings), sinks)
    if diagnoser is not None:
        pipeline.diagnoser = diagnoser
    return pipeline


async def ingest(store: Store, *alerts: dict) -> None:
    body = factories.body(*alerts)
    await store.ingest(WebhookPayload.model_validate_json(body))


def console_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_alert_flows_to_the_console_sink(store: Store, console_path: Path) -> None:
    sink = ConsoleSink(load_settings().templates, format="json", path=console_path)
    workers = Workers(store, pipeline_with([sink]), Metrics(), FAST)
    await ingest(store, factories.alert("PodCrashLooping", labels={"namespace": "shop"}))
    workers.start()
    try:
        await eventually(lambda: _async(len(console_records(console_path)) == 1))
    finally:
        await workers.stop()
    (record,) = console_records(console_path)
    assert record["alert"]["labels"]["alertname"] == "PodCrashLooping"
    assert record["classification"]["category"] == "crashloop"
    assert record["runbook"]["link"]["path"] == "crashloop.md"
    assert await store.queue_depth() == 0
    assert await store.outbox.counts() == {"done": 1}


async def test_resolve_is_delivered_after_its_trigger(store: Store, console_path: Path) -> None:
    sink = ConsoleSink(load_settings().templates, format="json", path=console_path)
    await ingest(store, factories.alert("A"))
    await ingest(store, factories.alert("A", status="resolved"))
    workers = Workers(store, pipeline_with([sink]), Metrics(), FAST)
    workers.start()
    try:
        await eventually(lambda: _async(len(console_records(console_path)) == 2))
    finally:
        await workers.stop()
    assert [r["alert"]["status"] for r in console_records(console_path)] == ["firing", "resolved"]


class RecordingSink:
    """A sink that fails as told, then succeeds, recording every call."""

    name = "recording"

    def __init__(self, failures: list[DeliveryError]) -> None:
        self.failures = failures
        self.calls: list[str] = []
        self.rendered: list[TriageResult] = []

    def render(self, result: TriageResult) -> list[Delivery]:
        self.rendered.append(result)
        return [Delivery(self.name, "post", f"rec:{result.alert.state_key}", {})]

    async def send(self, delivery: Delivery) -> dict[str, Any] | None:
        self.calls.append(delivery.key)
        if self.failures:
            raise self.failures.pop(0)
        return {"ok": True}

    async def already_delivered(self, delivery: Delivery) -> bool:
        return False

    async def aclose(self) -> None:
        pass


async def test_transient_failures_are_retried_until_delivered(store: Store) -> None:
    sink = RecordingSink([DeliveryError("HTTP 500", retry_after=0.05), DeliveryError("timeout")])
    metrics = Metrics()
    workers = Workers(store, pipeline_with([sink]), metrics, FAST)
    workers.delivery_max_age_seconds = 3600
    await ingest(store, factories.alert("A"))
    workers.start()
    try:
        await eventually(lambda: _outbox_state(store, "done"), timeout=15)
    finally:
        await workers.stop()
    assert len(sink.calls) == 3 and len(set(sink.calls)) == 1
    assert _sample(metrics, "runbook_router_deliveries_total", outcome="retry") == 2
    assert _sample(metrics, "runbook_router_deliveries_total", outcome="delivered") == 1


class SettlingSink(RecordingSink):
    """Its first delivery makes the replies after it unnecessary (as a storm summary does)."""

    def render(self, result: TriageResult) -> list[Delivery]:
        key = result.alert.state_key
        keys = [f"rec:post:{key}", f"rec:reply:{key}:0", f"rec:reply:{key}:1", f"rec:note:{key}"]
        return [Delivery(self.name, k.split(":")[1], k, {}) for k in keys]

    async def send(self, delivery: Delivery) -> dict[str, Any] | None:
        self.calls.append(delivery.key)
        state_key = delivery.key.split(":", 2)[2]
        return {"settles": [f"rec:reply:{state_key}:"]} if delivery.action == "post" else None


async def test_deliveries_made_unnecessary_are_settled_not_sent(store: Store) -> None:
    sink = SettlingSink([])
    workers = Workers(store, pipeline_with([sink]), Metrics(), FAST)
    await ingest(store, factories.alert("A"))
    workers.start()
    try:
        await eventually(lambda: _async(len(sink.calls) == 2))
        await asyncio.sleep(0.2)
    finally:
        await workers.stop()
    assert [key.split(":")[1] for key in sink.calls] == ["post", "note"]
    rows = await store.outbox.rows()
    assert [row["state"] for row in rows] == ["done"] * 4
    replies = [row for row in rows if row["action"] == "reply"]
    assert all("settled with rec:post:" in row["response_json"] for row in replies)


async def test_permanent_failure_is_not_retried(store: Store) -> None:
    sink = RecordingSink([DeliveryError("channel_not_found", permanent=True)])
    metrics = Metrics()
    workers = Workers(store, pipeline_with([sink]), metrics, FAST)
    await ingest(store, factories.alert("A"))
    workers.start()
    try:
        await eventually(lambda: _outbox_state(store, "dead"))
        await asyncio.sleep(0.2)
    finally:
        await workers.stop()
    assert len(sink.calls) == 1
    rows = await store.outbox.rows()
    assert rows[0]["last_error"] == "channel_not_found"
    assert _sample(metrics, "runbook_router_delivery_failures_permanent_total") == 1


async def test_the_failure_metric_is_labelled_with_a_fixed_reason(store: Store) -> None:
    """The free text (here with a fingerprint in it) goes to the log, never into a label."""
    failure = DeliveryError("no incident for runbook-router-3f1c0de2a9b84e11", permanent=True)
    sink = RecordingSink([failure])
    metrics = Metrics()
    workers = Workers(store, pipeline_with([sink]), metrics, FAST)
    await ingest(store, factories.alert("A"))
    workers.start()
    try:
        await eventually(lambda: _outbox_state(store, "dead"))
    finally:
        await workers.stop()
    labels = {
        sample.labels["reason"]
        for metric in metrics.registry.collect()
        for sample in metric.samples
        if sample.name == "runbook_router_delivery_failures_permanent_total"
    }
    assert labels == {"other"}
    assert labels <= set(REASONS)


class BlockingDiagnoser:
    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def diagnose(self, result: TriageResult, deadline: float) -> Diagnosis:
        self.started.set()
        await asyncio.sleep(3600)
        return Diagnosis()


class SlowFor:
    """Diagnostics that hang for one alert name (until released) and are instant otherwise."""

    def __init__(self, name: str) -> None:
        self.name, self.release = name, asyncio.Event()

    async def diagnose(self, result: TriageResult, deadline: float) -> Diagnosis:
        if result.alert.alertname == self.name:
            await self.release.wait()
        return Diagnosis()


async def test_a_hanging_triage_does_not_hold_back_the_alerts_after_it(store: Store) -> None:
    sink = RecordingSink([])
    diagnoser = SlowFor("Slow")
    workers = Workers(
        store, pipeline_with([sink], diagnoser), Metrics(), FAST.model_copy(update={"count": 1})
    )
    await ingest(store, factories.alert("Slow"), factories.alert("Quick"))
    workers.start()
    try:
        await eventually(lambda: _async(len(sink.calls) == 1))  # Quick, claimed with Slow
        await ingest(store, factories.alert("Later"))  # claimed while Slow still hangs
        await eventually(lambda: _async(len(sink.calls) == 2))
        assert [r.alert.alertname for r in sink.rendered] == ["Quick", "Later"]
        diagnoser.release.set()
        await eventually(lambda: _async(len(sink.calls) == 3))
    finally:
        await workers.stop()
    assert sink.rendered[-1].alert.alertname == "Slow"


async def test_shutdown_gives_back_unfinished_jobs(store: Store) -> None:
    diagnoser = BlockingDiagnoser()
    pipeline = pipeline_with([], diagnoser)
    pipeline.deadline_seconds = 3600
    workers = Workers(store, pipeline, Metrics(), FAST)
    await ingest(store, factories.alert("A"))
    workers.start()
    await asyncio.wait_for(diagnoser.started.wait(), 5)
    await workers.stop()
    assert await store.states() == {"pending": 1}
    (job,) = await store.claim("other", 1, 5)
    assert job.attempts == 1  # the interrupted attempt did not count


class BrokenClassifier:
    def classify(self, alert):
        raise RuntimeError("rules exploded")


async def test_failing_triage_is_retried_then_the_alert_is_delivered_as_received(
    store: Store,
) -> None:
    sink = RecordingSink([])
    pipeline = pipeline_with([sink])
    pipeline.classifier = BrokenClassifier()
    options = WorkerSettings(count=1, lease_seconds=5, poll_seconds=0.02, max_attempts=2)
    workers = Workers(store, pipeline, Metrics(), options)
    await ingest(store, factories.alert("A"))
    workers.start()
    try:
        await eventually(lambda: _outbox_state(store, "done"), timeout=15)
    finally:
        await workers.stop()
    assert await store.states() == {"done": 1}
    assert len(sink.calls) == 1  # delivered once, after the second attempt failed
    (result,) = sink.rendered
    assert result.classification.category == "unclassified"
    assert "Triage failed 2 times (RuntimeError: rules exploded)" in result.findings[0].title


class BrokenSink(RecordingSink):
    def render(self, result: TriageResult) -> list[Delivery]:
        raise RuntimeError("template exploded")


async def test_a_job_that_cannot_even_be_rendered_is_marked_failed(store: Store) -> None:
    pipeline = pipeline_with([BrokenSink([])])
    options = WorkerSettings(count=1, lease_seconds=5, poll_seconds=0.02, max_attempts=1)
    workers = Workers(store, pipeline, Metrics(), options)
    await ingest(store, factories.alert("A"))
    workers.start()
    try:
        await eventually(lambda: _states(store, {"failed": 1}))
    finally:
        await workers.stop()


async def _async(value: bool) -> bool:
    return value


async def _outbox_state(store: Store, state: str) -> bool:
    return (await store.outbox.counts()).get(state) == 1


async def _states(store: Store, expected: dict[str, int]) -> bool:
    return await store.states() == expected


def _sample(metrics: Metrics, name: str, **labels: str) -> float:
    total = 0.0
    for metric in metrics.registry.collect():
        for sample in metric.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total
