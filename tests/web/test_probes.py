"""Health, readiness, metrics, and the generic 404/405/500 answers."""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging

from prometheus_client.parser import text_string_to_metric_families

from router.config import Settings
from router.delivery import DeliveryError
from router.metrics import Metrics
from router.store import Store, StoreUnavailable
from router.web import create_app
from router.worker import Workers
from tests import factories
from tests.harness.waiting import eventually
from tests.test_worker import FAST, RecordingSink, ingest, pipeline_with
from tests.web.webhelpers import TOKEN, asgi_client, make_alert, make_payload

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_ok(make_app):
    async def readiness():
        return {"workers": True}

    async with asgi_client(make_app(token=TOKEN, readiness=readiness)) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"accepting": True, "store": True, "schema": True, "workers": True},
    }


async def test_readyz_reports_failed_callback_check(make_app):
    async def readiness():
        return {"workers": False, "sinks": True}

    async with asgi_client(make_app(token=TOKEN, readiness=readiness)) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["workers"]
    assert response.json()["checks"]["sinks"] is True


async def test_readyz_store_down(make_app, store: Store, monkeypatch):
    async def down():
        raise StoreUnavailable("database unavailable (OperationalError)")

    monkeypatch.setattr(store, "ping", down)
    monkeypatch.setattr(store, "schema_version", down)
    async with asgi_client(make_app(token=TOKEN)) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["schema", "store"]


async def test_readyz_schema_not_migrated(make_app, store: Store, monkeypatch):
    async def version():
        return 0

    monkeypatch.setattr(store, "schema_version", version)
    async with asgi_client(make_app(token=TOKEN)) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["schema"]


async def test_readyz_callback_raising(make_app):
    async def broken():
        raise RuntimeError("boom")

    async with asgi_client(make_app(token=TOKEN, readiness=broken)) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["readiness"]


async def test_readyz_not_ready_while_draining(app, client):
    app.state.accepting = False
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["accepting"]


async def test_unknown_route_is_json_404(client):
    response = await client.get("/nope")
    assert response.status_code == 404
    assert response.json() == {"error": "not found"}


async def test_wrong_method_is_json_405(client):
    response = await client.get("/alertmanager")
    assert response.status_code == 405
    assert response.json() == {"error": "method not allowed"}
    assert response.headers["Allow"] == "POST"


async def test_unexpected_error_is_500_without_traceback(client, store: Store, monkeypatch, caplog):
    async def boom(payload):
        raise RuntimeError("kaboom-internal-detail")

    monkeypatch.setattr(store, "ingest", boom)
    with caplog.at_level(logging.ERROR, logger="router.web"):
        response = await client.post("/alertmanager", json=make_payload(), headers=AUTH)
    assert response.status_code == 500
    assert response.json() == {"error": "internal error"}
    assert "kaboom" not in response.text
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and errors[0].exc_info is not None
    assert "kaboom-internal-detail" in str(errors[0].exc_info[1])


async def test_metrics_after_requests(client, store: Store, metrics: Metrics):
    firing = make_payload(make_alert("A"), make_alert("B"))
    await client.post("/alertmanager", json=firing, headers=AUTH)
    await client.post("/alertmanager", json=firing, headers=AUTH)
    resolved = make_alert("A", status="resolved", ends_at="2024-05-01T13:00:00Z")
    await client.post("/alertmanager", json=make_payload(resolved), headers=AUTH)
    await client.post("/alertmanager", json=firing)  # 401
    await client.get("/does/not/exist/123")
    await client.get("/healthz")

    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    values = samples(response.text)

    def value(name: str, **labels: str) -> float:
        return values[(name, tuple(sorted(labels.items())))]

    p = "runbook_router_"
    assert (
        value(p + "http_requests_total", endpoint="/alertmanager", method="POST", status="202") == 3
    )
    assert (
        value(p + "http_requests_total", endpoint="/alertmanager", method="POST", status="401") == 1
    )
    assert value(p + "http_requests_total", endpoint="unmatched", method="GET", status="404") == 1
    assert value(p + "http_requests_total", endpoint="/healthz", method="GET", status="200") == 1
    assert value(p + "http_request_duration_seconds_count", endpoint="/alertmanager") == 4
    assert value(p + "alerts_received_total", status="firing") == 4
    assert value(p + "alerts_received_total", status="resolved") == 1
    assert value(p + "alert_duplicates_total") == 2
    assert value(p + "queue_depth") == await store.queue_depth() == 3
    assert not any("/does/not/exist" in str(key) for key in values)


async def test_metrics_scrape_survives_store_trouble(client, store: Store, metrics, monkeypatch):
    metrics.queue_depth.set(7)

    async def hang():
        await asyncio.sleep(30)

    monkeypatch.setattr(store, "queue_depth", hang)
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert samples(response.text)[("runbook_router_queue_depth", ())] == 7


def test_metrics_have_their_own_registry():
    first, second = Metrics(), Metrics()  # no "Duplicated timeseries" error
    first.deliveries.labels("slack", "ok").inc()
    assert (
        second.registry.get_sample_value(
            "runbook_router_deliveries_total", {"sink": "slack", "outcome": "ok"}
        )
        is None
    )
    body, content_type = first.render()
    assert b"runbook_router_deliveries_total" in body
    assert content_type.startswith("text/plain")
    for name in (
        "job_age",
        "job_duration",
        "jobs_processed",
        "delivery_failures_permanent",
        "queue_depth",
    ):
        assert hasattr(first, name)


async def test_metrics_an_operator_expects(store: Store) -> None:
    """Build info, process metrics, the outbox backlog and dead letters per sink, no _created."""
    sink = RecordingSink(
        [DeliveryError("channel_not_found", permanent=True), DeliveryError("429", retry_after=3600)]
    )
    metrics = Metrics(sinks=["recording", "slack"])
    workers = Workers(store, pipeline_with([sink]), metrics, FAST)
    await ingest(store, factories.alert("A"), factories.alert("B"))
    workers.start()
    try:
        await eventually(lambda: _counts(store, {"dead": 1, "pending": 1}))
    finally:
        await workers.stop()
    async with asgi_client(create_app(Settings(), store, metrics)) as client:
        await asyncio.sleep(0.05)  # the pending delivery has an age
        text = (await client.get("/metrics")).text
    values = samples(text)
    p = "runbook_router_"
    assert (
        values[(p + "build_info", (("version", importlib.metadata.version("runbook-router")),))]
        == 1
    )
    assert values[("process_resident_memory_bytes", ())] > 0
    assert values[("process_open_fds", ())] > 0
    assert ("process_cpu_seconds_total", ()) in values
    assert values[(p + "outbox_pending", (("sink", "recording"),))] == 1
    assert 0 < values[(p + "outbox_oldest_pending_age_seconds", (("sink", "recording"),))] < 60
    assert values[(p + "outbox_dead_letters", (("sink", "recording"),))] == 1
    assert values[(p + "outbox_pending", (("sink", "slack"),))] == 0  # configured, nothing waits
    assert values[(p + "outbox_dead_letters", (("sink", "slack"),))] == 0
    assert "_created" not in text


async def _counts(store: Store, expected: dict[str, int]) -> bool:
    return await store.outbox.counts() == expected
