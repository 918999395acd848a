"""End to end: a real Prometheus fires, a real Alertmanager posts, the router triages.

The exporter's value crosses a rule's threshold → Prometheus fires → Alertmanager
posts with bearer auth → the router classifies, diagnoses against the same
Prometheus and delivers (console sink, JSON lines) → the value recovers → the
resolve arrives the same way. Also: Alertmanager retries a 503 and the alert
still arrives, once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.harness import alertmanager as am
from tests.harness.prometheus import PrometheusServer, TestExporter, available
from tests.harness.waiting import eventually_sync
from tests.pg import ADMIN_URL
from tests.procs import RouterProcess, free_port

TOKEN = "e2e-webhook-token"
RULES = """
groups:
  - name: e2e
    rules:
      - alert: PodCrashLooping
        expr: max by (namespace, pod, container) (kube_pod_container_status_waiting_reason{reason="CrashLoopBackOff"}) > 0
        labels: {severity: warning}
        annotations: {summary: "{{ $labels.pod }} is crash looping"}
"""

pytestmark = pytest.mark.skipif(
    not (available() and am.available()),
    reason="needs the prometheus and prometheus-alertmanager packages",
)


class Stack:
    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.exporter = TestExporter()
        self.console = tmp_path / "console.jsonl"
        port = free_port()
        self.alertmanager = am.AlertmanagerServer(f"http://127.0.0.1:{port}/alertmanager", TOKEN)
        rules = tmp_path / "rules.yml"
        rules.write_text(RULES)
        self.prometheus = PrometheusServer(
            [f"127.0.0.1:{self.exporter.port}"],
            rule_files=[rules],
            alertmanagers=[self.alertmanager.address],
        )
        self.router = RouterProcess(
            tmp_path,
            {
                "ROUTER_WEBHOOK_TOKEN": TOKEN,
                "ROUTER_CONSOLE_FORMAT": "json",
                "ROUTER_CONSOLE_PATH": str(self.console),
                "ROUTER_PROMETHEUS_URL": self.prometheus.url,
                "ROUTER_DATA_DIR": str(tmp_path / "data"),
                "KUBECONFIG": str(tmp_path / "no-kubeconfig"),
                **env,
            },
            port=port,
        ).start()

    def crash(self, looping: bool) -> None:
        labels = {
            "namespace": "shop",
            "pod": "api-7d9c5-x2",
            "container": "api",
            "reason": "CrashLoopBackOff",
        }
        self.exporter.set("kube_pod_container_status_waiting_reason", labels, 1 if looping else 0)

    def records(self) -> list[dict]:
        if not self.console.exists():
            return []
        return [json.loads(line) for line in self.console.read_text().splitlines() if line.strip()]

    def delivered(self, status: str) -> dict | None:
        """The first delivered PodCrashLooping record with this status, if any."""
        return next(
            (
                record
                for record in self.records()
                if record["alert"]["labels"]["alertname"] == "PodCrashLooping"
                and record["alert"]["status"] == status
            ),
            None,
        )

    def wait_for(self, status: str, timeout: float = 45) -> dict:
        return eventually_sync(
            lambda: self.delivered(status),
            timeout,
            lambda: (
                f"a {status} PodCrashLooping delivery:\n{self.router.log_path.read_text()[-3000:]}"
            ),
            interval=0.2,
        )

    def close(self) -> None:
        self.router.terminate()
        self.prometheus.close()
        self.alertmanager.close()
        self.exporter.close()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    built = Stack(tmp_path, {})
    yield built
    built.close()


@pytest.mark.timeout(120)
def test_crashloop_fires_and_resolves_through_alertmanager(stack: Stack) -> None:
    stack.crash(True)
    firing = stack.wait_for("firing")
    alert = firing["alert"]
    assert (
        alert["labels"]["pod"] == "api-7d9c5-x2"
        and alert["annotations"]["summary"] == "api-7d9c5-x2 is crash looping"
    )
    assert "kube_pod_container_status_waiting_reason" in alert["generatorURL"]
    assert firing["classification"]["category"] == "crashloop"
    assert firing["runbook"]["link"]["path"] == "crashloop.md"
    sources = {f["source"] for f in firing["findings"]}
    assert "prometheus" in sources  # diagnosed against the same Prometheus
    stack.crash(False)
    resolved = stack.wait_for("resolved")
    assert resolved["alert"]["fingerprint"] == alert["fingerprint"]
    time.sleep(3)  # Alertmanager re-sends groups every second: none may be delivered twice
    statuses = [
        r["alert"]["status"]
        for r in stack.records()
        if r["alert"]["fingerprint"] == alert["fingerprint"]
    ]
    assert statuses == ["firing", "resolved"]


@pytest.mark.postgres
@pytest.mark.timeout(120)
async def test_alertmanager_retries_a_503_and_the_alert_arrives_once(tmp_path: Path) -> None:
    admin = await asyncpg.connect(ADMIN_URL)
    name = f"rr_e2e_{int(time.time() * 1000) % 10**9}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    stack = Stack(tmp_path, {"ROUTER_DATABASE_URL": url})
    try:
        # The store goes away: every webhook now gets a 503 (never a 4xx, which Alertmanager would drop).
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        )
        stack.crash(True)
        eventually_sync(
            lambda: "status=503" in stack.router.log_path.read_text(),
            30,
            "the router to answer 503",
            interval=0.2,
        )
        assert stack.records() == []
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        firing = stack.wait_for("firing")
        time.sleep(3)
        same = [
            r
            for r in stack.records()
            if r["alert"]["fingerprint"] == firing["alert"]["fingerprint"]
        ]
        assert len(same) == 1
    finally:
        stack.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
