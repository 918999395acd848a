"""What the PagerDuty sink tests share: keys, settings for the fake, a triage result."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from router.alerts import Alert
from router.config import PagerDutySettings
from router.delivery import Delivery
from router.triage import (
    Classification,
    Evidence,
    Finding,
    Routing,
    RunbookExcerpt,
    RunbookLink,
    TriageResult,
    Verdict,
)
from tests import factories
from tests.harness.fake_pagerduty import API_TOKEN, ROUTING_KEY, FakePagerDutyServer

DB_KEY = "R0DATABASES123456789abcdef01234"
FROM = "oncall-bot@example.com"
PERMALINK = "https://example.slack.com/archives/C024BE91L/p1700000000000100"
FINGERPRINT = "3f1c0de2a9b84e11"
DEDUP = f"runbook-router-{FINGERPRINT}"


def settings_for(server: FakePagerDutyServer, **overrides: Any) -> PagerDutySettings:
    values: dict[str, Any] = {
        "routing_key": ROUTING_KEY,
        "routing_keys": {"databases": DB_KEY},
        "events_url": server.url,
        "api_url": server.url,
        "api_token": API_TOKEN,
        "from": FROM,
        "ca_file": server.ca_file,
        "timeout_seconds": 2.0,
    }
    return PagerDutySettings.model_validate({**values, **overrides})


def triage(
    status: str = "firing",
    *,
    starts_at: str = "2026-11-22T03:00:00Z",
    routing: Routing | None = None,
    annotations: dict[str, str] | None = None,
) -> TriageResult:
    raw = factories.alert(
        "PodCrashLooping",
        status=status,
        fingerprint=FINGERPRINT,
        starts_at=starts_at,
        labels={"namespace": "shop", "pod": "api-7d9c5-x2", "job": "api", "severity": "page"},
        annotations=annotations
        or {"summary": "api is restarting", "runbook_url": "https://runbooks.example/crashloop"},
        expr='rate(kube_pod_container_status_restarts_total{namespace="shop"}[5m]) > 0',
    )
    oom = RunbookLink(path="crashloop.md", anchor="oom", title="OOM killed", url=None)
    return TriageResult(
        alert=Alert.model_validate(raw),
        external_url="http://alertmanager:9093",
        receiver="runbook-router",
        group_key='{}:{alertname="PodCrashLooping"}',
        classification=Classification(
            category="crashloop",
            matched_by="rule",
            rule="crashloop",
            reasons=["rule crashloop matched alertname=~.*CrashLoop.*"],
            routing=routing or Routing(),
        ),
        runbook=RunbookExcerpt(
            link=RunbookLink(
                path="crashloop.md",
                anchor="crashloop",
                title="Crash loop",
                url="https://runbooks.example/crashloop",
            ),
            markdown="# Crash loop\n\nCheck the last termination reason.\n",
            subsections=[oom],
            why="rule crashloop names this section",
            filled="Filled from the alert: namespace=shop",
        ),
        findings=[
            Finding(title="Deployment api: 3/3 ready", source="kubernetes", severity="info"),
            Finding(
                title="api-7d9c5-x2 was OOM killed",
                source="kubernetes",
                severity="critical",
                evidence=[Evidence(kind="value", label="last exit code", value="137")],
                verdict=Verdict(
                    summary="OOMKilled: the memory limit is too low", rule="oom", runbook=oom
                ),
            ),
        ],
    )


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def by_action(deliveries: list[Delivery]) -> dict[str, Delivery]:
    return {d.action: d for d in deliveries}
