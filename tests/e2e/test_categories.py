"""Each category end to end: real Prometheus → real Alertmanager → router → fake Slack/PagerDuty.

One scenario for the whole module (starting Prometheus and Alertmanager is the slow
part): a test exporter drives four alert rules written as teams write them — an SLO
fast burn on the 5xx ratio, a p95 latency rule, a connection-saturation rule and a
crash-loop rule (windows shortened to seconds so the test runs in one minute). All
four fire at once; the router classifies them, diagnoses against the same Prometheus,
a real PostgreSQL holding 25 sessions of one application and the fake Kubernetes API,
and delivers; then every metric recovers and each alert resolves. The tests below read
what reached Slack and PagerDuty.
"""

from __future__ import annotations

import asyncio
import copy
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.e2e.delivery import RUNBOOKS_URL, WEBHOOK_TOKEN, DeliveryStack
from tests.harness import alertmanager as am
from tests.harness import fake_kube as k
from tests.harness.prometheus import PrometheusServer, TestExporter, available
from tests.pg import fresh_database
from tests.procs import free_port

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not (available() and am.available()),
        reason="needs the prometheus and prometheus-alertmanager packages",
    ),
]

RULES = """
groups:
  - name: checkout-slo
    rules:
      - alert: CheckoutErrorBudgetFastBurn
        expr: |
          (
            sum by (service) (rate(http_requests_total{service="checkout", code=~"5.."}[10s]))
          /
            sum by (service) (rate(http_requests_total{service="checkout"}[10s]))
          ) > (14.4 * 0.001)
        for: 2s
        labels: {severity: critical, namespace: shop, slo: availability}
        annotations:
          summary: "checkout is burning its error budget 14x too fast"
  - name: search-latency
    rules:
      - alert: SearchLatencyP95High
        expr: |
          histogram_quantile(0.95,
            sum by (le, service) (rate(http_request_duration_seconds_bucket{service="search"}[10s]))
          ) > 0.5
        for: 2s
        labels: {severity: warning, namespace: shop}
        annotations:
          summary: "search p95 latency above 500ms"
  - name: databases
    rules:
      - alert: OrdersDatabaseConnectionsNearLimit
        expr: |
          sum by (datname) (pg_stat_activity_count{datname="orders"})
            / scalar(max(pg_settings_max_connections)) > 0.8
        for: 2s
        labels: {severity: warning, namespace: shop, deployment: orders-api}
        annotations:
          summary: "orders database connections above 80% of max_connections"
  - name: kubernetes-apps
    rules:
      - alert: KubePodCrashLooping
        expr: max by (namespace, pod, container) (kube_pod_container_status_waiting_reason{reason="CrashLoopBackOff"}) >= 1
        for: 2s
        labels: {severity: warning}
        annotations:
          summary: "Pod {{ $labels.namespace }}/{{ $labels.pod }} is crash looping"
"""

ALERTS = {
    "error_rate": "CheckoutErrorBudgetFastBurn",
    "latency": "SearchLatencyP95High",
    "db_saturation": "OrdersDatabaseConnectionsNearLimit",
    "crashloop": "KubePodCrashLooping",
}
CRASHING = {"namespace": "shop", "pod": "api-7abc-x1", "container": "api"}


class Traffic:
    """Counters and histograms that move like a service's, every quarter second."""

    def __init__(self, exporter: TestExporter) -> None:
        self.exporter = exporter
        self.failing = self.slow = False
        self.buckets = {0.1: 0.0, 0.25: 0.0, 1.0: 0.0, 2.5: 0.0}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.wait(0.25):
            self.exporter.add("http_requests_total", {"service": "checkout", "code": "200"}, 50)
            if self.failing:
                self.exporter.add("http_requests_total", {"service": "checkout", "code": "503"}, 10)
            self.buckets[1.0 if self.slow else 0.1] += 20
            self.exporter.histogram(
                "http_request_duration_seconds", {"service": "search"}, self.buckets
            )

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(2)


class HeldSessions:
    """PostgreSQL sessions held open by a background event loop (25 for 'orders-api')."""

    def __init__(self, count: int) -> None:
        self.ready = threading.Event()
        self.done = threading.Event()
        self.dsn = ""
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=asyncio.run, args=(self._hold(count),), daemon=True)
        self.thread.start()
        if not self.ready.wait(30) or self.error:
            raise RuntimeError(f"cannot hold PostgreSQL sessions: {self.error}")

    async def _hold(self, count: int) -> None:
        try:
            async with fresh_database() as dsn:
                sessions = [
                    await asyncpg.connect(dsn, server_settings={"application_name": "orders-api"})
                    for _ in range(count)
                ]
                self.dsn = dsn
                self.ready.set()
                await asyncio.to_thread(self.done.wait)
                for session in sessions:
                    await session.close()
        except BaseException as exc:  # the skip from fresh_database, or a connection error
            self.error = exc
            self.ready.set()

    def close(self) -> None:
        self.done.set()
        self.thread.join(15)


@dataclass
class Outcome:
    stack: DeliveryStack
    kube: k.FakeKube
    fired: dict[str, dict[str, Any]] = field(default_factory=dict)  # category → message
    threads: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    resolved: dict[str, dict[str, Any]] = field(default_factory=dict)


def _cluster() -> k.FakeKube:
    now = datetime.now(UTC)
    fake = k.FakeKube()
    fake.add(
        k.deployment("api", "shop"),
        k.replicaset("api", "shop", 6, now - timedelta(days=2), "registry/api:1.4.1"),
        k.replicaset("api", "shop", 7, now - timedelta(minutes=8), "registry/api:1.4.2"),
        k.oom_killed_pod(),
        k.deployment("orders-api", "shop", replicas=6, ready=6),
    )
    fake.logs[("api-7abc-x1", "api", True)] = "starting\nfatal: out of memory"
    return fake


def _break_everything(exporter: TestExporter, traffic: Traffic, broken: bool) -> None:
    traffic.failing = traffic.slow = broken
    exporter.set("pg_stat_activity_count", {"datname": "orders"}, 93 if broken else 20)
    exporter.set("pg_settings_max_connections", None, 100)
    exporter.set(
        "kube_pod_container_status_waiting_reason",
        {**CRASHING, "reason": "CrashLoopBackOff"},
        1 if broken else 0,
    )


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    workdir = tmp_path_factory.mktemp("categories")
    exporter = TestExporter()
    traffic = Traffic(exporter)
    sessions = HeldSessions(25)
    kube = _cluster()
    kube_server = k.FakeKubeServer(kube)
    port = free_port()
    alertmanager = am.AlertmanagerServer(f"http://127.0.0.1:{port}/alertmanager", WEBHOOK_TOKEN)
    rules = workdir / "rules.yml"
    rules.write_text(RULES)
    prometheus = PrometheusServer(
        [exporter.target], rule_files=[rules], alertmanagers=[alertmanager.address]
    )
    config = {
        "prometheus": {"url": prometheus.url},
        "diagnostics": {
            "deadline_seconds": 8,
            "kubernetes": {
                "kubeconfig": str(kube.kubeconfig(workdir / "kubeconfig", kube_server.port))
            },
            "postgres": {
                "targets": [
                    {"name": "orders", "matchers": ['datname="orders"'], "dsn": sessions.dsn}
                ]
            },
        },
    }
    stack = DeliveryStack(workdir, config=config, port=port)
    try:
        result = Outcome(stack, kube)
        _break_everything(exporter, traffic, True)
        for name in ALERTS.values():
            stack.wait(lambda name=name: stack.message_for(name), f"{name} in Slack", timeout=90)
        time.sleep(3)  # thread replies, graphs and notes follow the message
        for category, name in ALERTS.items():
            # copies: the fake edits its messages in place when the router updates them
            result.fired[category] = copy.deepcopy(stack.message_for(name))
            result.threads[category] = copy.deepcopy(stack.thread(result.fired[category]))
        _break_everything(exporter, traffic, False)
        for category, name in ALERTS.items():
            result.resolved[category] = stack.wait(
                lambda name=name: (m := stack.message_for(name)) and "RESOLVED" in m["text"] and m,
                f"{name} resolved in Slack",
                timeout=90,
            )
        time.sleep(2)  # Alertmanager repeats resolved groups: none may be delivered again
        yield result
    finally:
        stack.close()
        prometheus.close()
        alertmanager.close()
        kube_server.stop()
        traffic.stop()
        exporter.close()
        sessions.close()


def _texts(message: dict[str, Any]) -> str:
    return str(message)


def _incident(outcome: Outcome, name: str) -> Any:
    incidents = [i for i in outcome.stack.pagerduty.incidents if name in i.title]
    assert len(incidents) == 1, [i.title for i in outcome.stack.pagerduty.incidents]
    return incidents[0]


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("category", "runbook"),
    [
        ("error_rate", "error-rate.md"),
        ("latency", "latency.md"),
        ("db_saturation", "database-saturation.md"),
        ("crashloop", "crashloop.md"),
    ],
)
def test_each_category_is_classified_and_points_at_its_runbook(
    outcome: Outcome, category: str, runbook: str
) -> None:
    message = outcome.fired[category]
    header = message["attachments"][0]["blocks"][0]["text"]["text"]
    assert "FIRING" in header and ALERTS[category] in header
    context = str(message["attachments"][0]["blocks"])
    assert f"*{category}*" in context
    assert f"{RUNBOOKS_URL}/{runbook}#" in context
    incident = _incident(outcome, ALERTS[category])
    trigger = next(
        e for e in outcome.stack.pagerduty.events() if e["dedup_key"] == incident.incident_key
    )
    assert trigger["payload"]["class"] == category
    assert any(link["href"].startswith(f"{RUNBOOKS_URL}/{runbook}") for link in trigger["links"])


@pytest.mark.timeout(300)
def test_every_alert_was_diagnosed_against_the_same_prometheus(outcome: Outcome) -> None:
    units = {"error_rate": "%", "latency": " (ms|s)", "db_saturation": "%"}
    for category, unit in units.items():
        details = str(outcome.threads[category])
        # The alert's own expression, queried now and over the last hour: the measured
        # value beside the rule's threshold, both in the unit people read (a ratio as %).
        value = rf"[0-9.]+{unit}"
        assert re.search(rf"Alert expression still true now: {value} \(&gt; {value}\)", details)
        assert "*last hour*" in details, (category, details[:2000])


@pytest.mark.timeout(300)
def test_crash_loop_findings_name_the_oom_kill_and_the_rollout(outcome: Outcome) -> None:
    text = _texts(outcome.fired["crashloop"]) + str(outcome.threads["crashloop"])
    assert "OOMKilled" in text
    assert "crashloop.md#oomkilled" in text
    assert "rollback.md" in text and "revision 7" in text
    note = _incident(outcome, "KubePodCrashLooping").notes[0]["content"]
    assert "OOMKilled" in note and "rollback" in note.lower()
    assert all(method == "GET" for method, _, _ in outcome.kube.requests)


@pytest.mark.timeout(300)
def test_saturation_findings_name_the_application_holding_the_pool(outcome: Outcome) -> None:
    text = _texts(outcome.fired["db_saturation"]) + str(outcome.threads["db_saturation"])
    assert "orders-api" in text and "holds" in text
    note = _incident(outcome, "OrdersDatabaseConnectionsNearLimit").notes[0]["content"]
    assert "orders-api" in note


@pytest.mark.timeout(300)
def test_error_rate_and_latency_show_their_values_against_the_threshold(outcome: Outcome) -> None:
    scale = {"%": 0.01, " ms": 0.001, " s": 1.0}
    for category, threshold in (("error_rate", "1.44%"), ("latency", "500 ms")):
        findings = _findings(outcome.fired[category])
        found = re.search(
            rf"still true now: ([0-9.]+)(%| ms| s) \(&gt; {re.escape(threshold)}\)", findings
        )
        assert found, findings
        limit = float(threshold.rstrip("% ms")) * scale[threshold.lstrip("0123456789.")]
        assert float(found[1]) * scale[found[2]] > limit, findings


def _findings(message: dict[str, Any]) -> str:
    blocks = message["attachments"][0]["blocks"]
    return next(b["text"]["text"] for b in blocks if "Findings" in str(b.get("text", "")))


@pytest.mark.timeout(300)
def test_every_alert_resolves_in_place_exactly_once(outcome: Outcome) -> None:
    stack = outcome.stack
    assert len(stack.messages()) == len(ALERTS)  # one message per alert, edited on resolve
    for category, name in ALERTS.items():
        resolved = outcome.resolved[category]
        assert resolved["ts"] == outcome.fired[category]["ts"]
        assert resolved["attachments"][0]["color"] == "#2eb886"
        incident = _incident(outcome, name)
        assert incident.status == "resolved"
        actions = [
            e["event_action"]
            for e in stack.pagerduty.events()
            if e["dedup_key"] == incident.incident_key
        ]
        assert actions == ["trigger", "resolve"]
        assert len(incident.notes) == 1
    assert len(stack.slack.requests("chat.update")) == len(ALERTS)
