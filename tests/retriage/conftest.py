"""A whole router for re-triage tests: real store, workers, outbox and sinks, behind real HTTP.

Slack and PagerDuty are the fakes over HTTP(S); diagnostics are a fake :class:`GatedDiagnoser`
whose runs wait until the test opens its gate, so "answered before diagnostics finished"
is a fact the test controls, not a timing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from router.alerts import WebhookPayload
from router.config import PagerDutySettings, Settings, SlackSettings, WorkerSettings, load_settings
from router.integrations.pagerduty.sink import PagerDutySink
from router.integrations.slack.response import SlackResponseSink
from router.integrations.slack.sink import SlackSink
from router.metrics import Metrics
from router.retriage import Retriager
from router.service import build_pipeline, load_components
from router.store import Store, open_store
from router.triage import Diagnosis, Finding, TriageResult
from router.web import create_app
from router.worker import Workers
from tests import factories
from tests.harness.fake_pagerduty import API_TOKEN, ROUTING_KEY, FakePagerDuty, FakePagerDutyServer
from tests.harness.fake_slack import TOKEN, FakeSlack
from tests.harness.waiting import eventually
from tests.web.webhelpers import LiveServer

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
PD_SECRET = "pd-webhook-secret-0123456789abcdef"
PD_OLD_SECRET = "pd-webhook-secret-old-9876543210"
FAST = WorkerSettings(count=2, lease_seconds=5, poll_seconds=0.05, shutdown_grace_seconds=0.5)
CRASHLOOP = {"namespace": "shop", "pod": "api-7d9c5-x2", "severity": "critical"}


class GatedDiagnoser:
    """Findings that say which run made them; each run waits for ``gate`` to be open."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.started = asyncio.Event()
        self.runs = 0
        self.error: Exception | None = None  # raised by the next runs when set

    async def diagnose(self, result: TriageResult, deadline: float) -> Diagnosis:
        self.runs += 1
        run = self.runs
        self.started.set()
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        title = f"run {run}: api-7d9c5-x2 restarted 7 times"
        return Diagnosis(findings=[Finding(title=title, source="fake", severity="warning")])


def slack_signature(body: bytes, timestamp: int | str, secret: str = SIGNING_SECRET) -> str:
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def slack_headers(body: bytes, *, secret: str = SIGNING_SECRET, age: float = 0) -> dict[str, str]:
    timestamp = int(time.time() - age)
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": slack_signature(body, timestamp, secret),
    }


def pagerduty_signature(body: bytes, secret: str = PD_SECRET) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Rig:
    store: Store
    slack: FakeSlack
    pagerduty: FakePagerDuty
    diagnoser: GatedDiagnoser
    workers: Workers
    retriager: Retriager
    http: httpx.AsyncClient

    async def fire(self, alert: dict[str, Any]) -> None:
        """Ingest an alert and wait until every delivery of its triage is done."""
        body = factories.body(alert)
        await self.store.ingest(WebhookPayload.model_validate_json(body))
        self.workers.wake()
        await self.settled()

    async def settled(self) -> None:
        """Wait until the queue, the re-triage requests and the outbox are all quiet."""

        async def quiet() -> bool:
            # In this order: a finished re-triage or job has committed its deliveries.
            requests = await self.store.retriages.rows()
            if any(r["state"] in ("pending", "running") for r in requests):
                return False
            if await self.store.queue_depth():
                return False
            counts = await self.store.outbox.counts()
            return not counts.get("pending", 0) + counts.get("sending", 0)

        await eventually(quiet)

    async def command(self, text: str, *, user: str = "U024ALICE", name: str = "alice") -> Any:
        self.commands = getattr(self, "commands", 0) + 1
        form = {
            "token": "unused-verification-token",
            "team_id": "T0000FAKE",
            "channel_id": "C0ALERTS1",
            "user_id": user,
            "user_name": name,
            "command": "/triage",
            "text": text,
            "response_url": self.slack.response_url(f"cmd-{self.commands}"),
            "trigger_id": f"1337.42.trigger{self.commands}",
        }
        body = urlencode(form).encode()
        return await self.http.post("/slack/commands", content=body, headers=slack_headers(body))

    async def press(self, fingerprint: str, trigger: str = "2001.42.press") -> httpx.Response:
        payload = {
            "type": "block_actions",
            "trigger_id": trigger,
            "user": {"id": "U024BOB00", "username": "bob", "name": "bob"},
            "channel": {"id": "C0ALERTS1"},
            "response_url": self.slack.response_url(f"press-{trigger}"),
            "actions": [
                {
                    "action_id": "rerun_diagnostics",
                    "block_id": "alert_actions",
                    "value": fingerprint,
                    "type": "button",
                    "action_ts": "1700000001.000200",
                }
            ],
        }
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self.http.post(
            "/slack/interactions", content=body, headers=slack_headers(body)
        )

    async def pd_event(self, body: dict[str, Any], *, secret: str = PD_SECRET) -> httpx.Response:
        raw = json.dumps(body).encode()
        headers = {
            "Content-Type": "application/json",
            "X-PagerDuty-Signature": pagerduty_signature(raw, secret),
        }
        return await self.http.post("/pagerduty/webhook", content=raw, headers=headers)


def rig_settings(slack: FakeSlack, pd_server: FakePagerDutyServer, **pagerduty: Any) -> Settings:
    slack_settings = SlackSettings(
        bot_token=TOKEN,
        signing_secret=SIGNING_SECRET,
        api_url=f"{slack.base_url}/api/",
        rate_per_second=1000,
        burst=100,
    )
    pd_settings = PagerDutySettings.model_validate(
        {
            "routing_key": ROUTING_KEY,
            "events_url": pd_server.url,
            "api_url": pd_server.url,
            "api_token": API_TOKEN,
            "from": "oncall-bot@example.com",
            "ca_file": pd_server.ca_file,
            "timeout_seconds": 2,
            "webhook_secret": PD_SECRET,
            "webhook_secrets": [PD_OLD_SECRET],
            **pagerduty,
        }
    )
    return load_settings().model_copy(update={"slack": slack_settings, "pagerduty": pd_settings})


@pytest.fixture
def rig_options() -> dict[str, Any]:
    """PagerDuty settings a test overrides (e.g. ``findings_max_age_seconds``)."""
    return {}


@pytest.fixture
async def rig(
    tmp_path: Path,
    fake_slack: FakeSlack,
    fake_pagerduty: tuple[FakePagerDuty, FakePagerDutyServer],
    rig_options: dict[str, Any],
) -> AsyncIterator[Rig]:
    pd_fake, pd_server = fake_pagerduty
    settings = rig_settings(fake_slack, pd_server, **rig_options)
    store = await open_store(f"sqlite:///{tmp_path / 'router.db'}")
    sinks = [
        SlackSink(settings.slack, store, settings.templates),
        PagerDutySink(settings.pagerduty, store),
        SlackResponseSink(settings.templates, timeout=5, api_url=settings.slack.api_url),
    ]
    pipeline = build_pipeline(settings, load_components(settings), sinks)
    diagnoser = GatedDiagnoser()
    pipeline.diagnoser = diagnoser
    metrics = Metrics()
    workers = Workers(store, pipeline, metrics, FAST)
    retriager = Retriager.for_service(
        settings, store, pipeline, on_queued=workers.wake, metrics=metrics
    )
    app = create_app(settings, store, metrics, on_ingest=workers.wake, retriager=retriager)
    workers.start()
    await retriager.start()
    async with LiveServer(app) as live, httpx.AsyncClient(base_url=live.url, timeout=10) as http:
        yield Rig(store, fake_slack, pd_fake, diagnoser, workers, retriager, http)
        diagnoser.gate.set()
        await retriager.close(5)
    await workers.stop()
    for sink in sinks:
        await sink.aclose()
    await store.close()


def retriages_counted(rig: Rig) -> dict[tuple[str, str], float]:
    """``runbook_router_retriages_total`` by (source, outcome), as /metrics would show it."""
    return {
        (sample.labels["source"], sample.labels["outcome"]): sample.value
        for metric in rig.retriager.metrics.registry.collect()
        for sample in metric.samples
        if sample.name == "runbook_router_retriages_total" and sample.value
    }
