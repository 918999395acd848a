"""One injected fault each, triaged by ``runbook-router triage`` with every provider live.

A real Prometheus, a real PostgreSQL (a throw-away database per test) and the fake
Kubernetes API. Each test asserts the *top* verdict and its runbook pointer: the
cause leads, its symptoms follow, and a healthy control claims no cause at all.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from router.cli import main
from tests import factories
from tests.harness import fake_kube as k
from tests.pg import fresh_database
from tests.procs import free_port

pytestmark = pytest.mark.postgres

STARTS_AT = k.stamp(k.ALERT_START)
LONG_AGO = k.ALERT_START - timedelta(days=2)
ALERTS = {
    "crashloop": (
        "KubePodCrashLooping",
        'increase(kube_pod_container_status_restarts_total{namespace="shop"}[10m]) > 0',
    ),
    "latency": (
        "LatencyP95Breaching",
        "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket"
        '{service="api"}[5m]))) > 0.5',
    ),
    "error_rate": (
        "SLOAvailabilityFastBurn",
        'sum(rate(http_requests_total{service="api", code=~"5.."}[5m]))'
        ' / sum(rate(http_requests_total{service="api"}[5m])) > 0.05',
    ),
    "db_saturation": (
        "PostgresTooManyConnections",
        "sum(pg_stat_activity_count) / sum(pg_settings_max_connections) > 0.7",
    ),
}


@dataclass
class Triage:
    """Runs ``runbook-router triage`` against the live providers, one alert at a time."""

    tmp_path: Path
    prometheus_url: str
    capsys: Any
    kube: k.FakeKube | None = None
    kube_port: int | None = None
    dsn: str | None = None

    async def run(self, category: str, labels: dict[str, str], *, text: bool = False) -> Any:
        name, expr = ALERTS[category]
        alert = factories.alert(name, labels=labels, starts_at=STARTS_AT, expr=expr)
        payload = self.tmp_path / "payload.json"
        payload.write_bytes(factories.body(alert))
        argv = ["triage", str(payload), "--config", str(self._config())]
        code = await asyncio.to_thread(main, argv if text else [*argv, "--json"])
        captured = self.capsys.readouterr()
        assert code == 0, captured.err
        assert "Traceback" not in captured.out + captured.err
        if text:
            return captured.out
        result = json.loads(captured.out)
        assert result["classification"]["category"] == category
        return result

    def _config(self) -> Path:
        lines = [f"prometheus: {{url: '{self.prometheus_url}'}}", "diagnostics:"]
        lines.append("  deadline_seconds: 8")
        if self.kube is not None and self.kube_port is not None:
            kubeconfig = self.kube.kubeconfig(self.tmp_path / "kubeconfig", self.kube_port)
            lines.append(f"  kubernetes: {{kubeconfig: '{kubeconfig}'}}")
        else:
            lines.append("  kubernetes: {enabled: false}")
        if self.dsn:
            lines.append(f"  postgres: {{targets: [{{name: main, dsn: '{self.dsn}'}}]}}")
        config = self.tmp_path / "router.yaml"
        config.write_text("\n".join(lines) + "\n")
        return config


@pytest.fixture(autouse=True)
def _no_router_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ROUTER_"):
            monkeypatch.delenv(name)


@pytest.fixture
def cluster() -> Iterator[tuple[k.FakeKube, k.FakeKubeServer]]:
    fake = k.FakeKube()
    server = k.FakeKubeServer(fake)
    yield fake, server
    server.stop()


@pytest.fixture
def triage(tmp_path: Path, prometheus: Any, cluster: Any, capsys: Any) -> Triage:
    fake, server = cluster
    return Triage(tmp_path, prometheus.url, capsys, fake, server.port)


@pytest.fixture
async def database(tmp_path: Path, prometheus: Any, capsys: Any) -> AsyncIterator[Triage]:
    async with fresh_database() as url:
        yield Triage(tmp_path, prometheus.url, capsys, dsn=url)


def verdicts(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [f["verdict"] for f in result["findings"] if f["verdict"]]


def pointer(verdict: dict[str, Any]) -> str:
    link = verdict["runbook"]
    assert link is not None, f"{verdict['summary']!r} points at no runbook section"
    return f"{link['path']}#{link['anchor']}" if link["anchor"] else link["path"]


def causes(result: dict[str, Any]) -> list[str]:
    return [v["rule"] for v in verdicts(result) if v["role"] == "cause"]


def shop_deployment(kube: k.FakeKube, *, rollout_minutes_before: float | None = None) -> None:
    """Deployment ``api`` at revision 7; revision 7 created long ago unless told otherwise."""
    created = (
        k.ALERT_START - timedelta(minutes=rollout_minutes_before)
        if rollout_minutes_before is not None
        else LONG_AGO + timedelta(hours=1)
    )
    kube.add(
        k.deployment("api", "shop"),
        k.replicaset("api", "shop", 6, LONG_AGO, "registry/api:1.4.1"),
        k.replicaset("api", "shop", 7, created, "registry/api:1.4.2"),
    )


CRASHING_POD = {"namespace": "shop", "pod": "api-7abc-x1", "container": "api"}
SERVICE = {"namespace": "shop", "service": "api"}


# crashloop


async def test_oom_killed_points_at_the_oom_fix(triage: Triage) -> None:
    shop_deployment(triage.kube, rollout_minutes_before=6)
    triage.kube.add(k.oom_killed_pod())
    triage.kube.logs[("api-7abc-x1", "api", True)] = "starting\nfatal: out of memory"
    result = await triage.run("crashloop", CRASHING_POD)
    top = verdicts(result)[0]
    assert (top["rule"], top["role"]) == ("oom-killed", "cause")
    assert pointer(top) == "crashloop.md#oomkilled"
    rollout = verdicts(result)[1]  # the rollout that made the pods: a factor, after the cause
    assert (rollout["rule"], rollout["role"]) == ("deploy-before-alert", "factor")
    assert all(method == "GET" for method, _, _ in triage.kube.requests)


async def test_a_bad_deploy_is_rolled_back_first_with_the_log_line_as_evidence(
    triage: Triage,
) -> None:
    shop_deployment(triage.kube, rollout_minutes_before=4)
    triage.kube.add(
        k.pod(
            "api-7abc-x1", "shop", "api-7abc", "api", restarts=5, last_reason="Error", exit_code=1
        )
    )
    triage.kube.logs[("api-7abc-x1", "api", True)] = (
        "listening on :8080\npanic: cannot parse PAYMENTS_URL"
    )
    result = await triage.run("crashloop", CRASHING_POD)
    ranked = verdicts(result)
    top = ranked[0]
    assert (top["rule"], top["role"]) == ("bad-deploy", "cause")
    assert top["summary"] == (
        "The pods of revision 7, created 4 min before the alert, exit 1:"
        " `panic: cannot parse PAYMENTS_URL`; roll back"
    )
    assert pointer(top) == "rollback.md"
    symptom = next(v for v in ranked if v["rule"] == "application-error")
    assert (symptom["role"], symptom["explained_by"]) == ("symptom", "bad-deploy")

    text = await triage.run("crashloop", CRASHING_POD, text=True)
    roles = ("cause:", "factor:", "symptom:")
    first = next(line.strip() for line in text.splitlines() if line.strip().startswith(roles))
    assert first.startswith("cause: The pods of revision 7") and "Deployment rollback" in first


async def test_a_healthy_crashloop_control_claims_no_cause(triage: Triage) -> None:
    shop_deployment(triage.kube)
    triage.kube.add(k.pod("api-7abc-x1", "shop", "api-7abc", "api"))
    result = await triage.run("crashloop", CRASHING_POD)
    assert causes(result) == []


# latency


async def test_a_rollout_before_a_latency_alert_points_at_rollback(triage: Triage) -> None:
    shop_deployment(triage.kube, rollout_minutes_before=6)
    triage.kube.add(k.hpa("api", "shop", "api", current=4, maximum=10))
    result = await triage.run("latency", SERVICE)
    top = verdicts(result)[0]
    assert (top["rule"], top["role"]) == ("deploy-before-alert", "cause")
    assert top["summary"].startswith("Rollout to revision 7 6 min before the alert started")
    assert pointer(top) == "rollback.md"


async def test_an_hpa_at_its_maximum_points_at_scaling(triage: Triage) -> None:
    shop_deployment(triage.kube)
    triage.kube.add(k.hpa("api", "shop", "api", current=10, maximum=10))
    result = await triage.run("latency", SERVICE)
    top = verdicts(result)[0]
    assert (top["rule"], top["role"]) == ("hpa-at-max", "cause")
    assert pointer(top) == "latency.md#cpu-saturation--hpa-at-max"


async def test_a_healthy_latency_control_claims_no_cause(triage: Triage) -> None:
    shop_deployment(triage.kube)
    triage.kube.add(k.hpa("api", "shop", "api", current=4, maximum=10))
    result = await triage.run("latency", SERVICE)
    assert causes(result) == []


# error_rate


async def test_a_healthy_error_rate_control_claims_no_cause(triage: Triage) -> None:
    shop_deployment(triage.kube)
    triage.kube.add(k.pod("api-7abc-x1", "shop", "api-7abc", "api"))
    triage.kube.logs[("api-7abc-x1", "api", False)] = "GET /orders 200"
    result = await triage.run("error_rate", SERVICE)
    assert causes(result) == []


async def test_prometheus_down_puts_no_error_text_in_the_message(triage: Triage) -> None:
    triage.prometheus_url = f"http://127.0.0.1:{free_port()}"
    shop_deployment(triage.kube)
    triage.kube.add(k.pod("api-7abc-x1", "shop", "api-7abc", "api"))
    triage.kube.logs[("api-7abc-x1", "api", False)] = "GET /orders 200"
    text = await triage.run("error_rate", SERVICE, text=True)
    assert "verdict rule" not in text and "Error:" not in text and "failed" not in text
    assert "Prometheus: connection refused or host unreachable" in text


# db_saturation


async def _sessions(url: str, application: str, count: int) -> list[asyncpg.Connection]:
    return [
        await asyncpg.connect(url, server_settings={"application_name": application})
        for _ in range(count)
    ]


async def test_one_application_near_the_database_limit_is_named(database: Triage) -> None:
    url = database.dsn.replace("postgresql+asyncpg://", "postgresql://")
    name = url.rsplit("/", 1)[1]
    setup = await asyncpg.connect(url)
    await setup.execute(f'ALTER DATABASE "{name}" CONNECTION LIMIT 14')
    await setup.close()
    held = await _sessions(url, "orders-api", 9) + await _sessions(url, "billing", 1)
    try:
        result = await database.run("db_saturation", {"datname": name})
    finally:
        for connection in held:
            await connection.close()
    top = verdicts(result)[0]
    assert (top["rule"], top["role"]) == ("one-application", "cause")
    assert top["summary"].startswith(
        f"orders-api holds 9 of the 10 connections to database {name} (10 of 14 allowed);"
        " the server is at "
    )
    assert top["summary"].endswith(" usable")
    assert pointer(top) == "database-saturation.md#one-application-holds-most-connections"


async def test_a_lock_chain_names_the_blocker_first(database: Triage) -> None:
    url = database.dsn.replace("postgresql+asyncpg://", "postgresql://")
    setup = await asyncpg.connect(url)
    await setup.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance int)")
    await setup.execute("INSERT INTO accounts VALUES (1, 10)")
    (holder,) = await _sessions(url, "payments-api", 1)
    holder_pid = holder.get_server_pid()
    waiters = await _sessions(url, "orders-api", 2)
    await holder.execute("BEGIN; UPDATE accounts SET balance = 11 WHERE id = 1")
    tasks = [asyncio.create_task(w.execute("UPDATE accounts SET balance = 12")) for w in waiters]
    try:
        while (
            await setup.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            )
            < 2
        ):
            await asyncio.sleep(0.05)
        result = await database.run("db_saturation", {})
    finally:
        holder.terminate()
        await asyncio.gather(*tasks, return_exceptions=True)
        for connection in [*waiters, setup]:
            await connection.close()
    top = verdicts(result)[0]
    assert (top["rule"], top["role"]) == ("lock-chain", "cause")
    assert top["summary"].startswith(
        f"pid {holder_pid} (payments-api, idle in transaction, transaction open "
    )
    assert top["summary"].endswith(
        " blocks 2 session(s): `BEGIN; UPDATE accounts SET balance = 11 WHERE id = 1`"
    )
    assert pointer(top) == "database-saturation.md#long-running-queries-and-lock-chains"
    assert "one-application" not in [v["rule"] for v in verdicts(result)]  # 3 of 97 is no pool


async def test_a_healthy_database_control_claims_no_cause(database: Triage) -> None:
    url = database.dsn.replace("postgresql+asyncpg://", "postgresql://")
    held = await _sessions(url, "orders-api", 1)
    try:
        result = await database.run("db_saturation", {"datname": url.rsplit("/", 1)[1]})
    finally:
        await held[0].close()
    assert causes(result) == []  # the server is shared: other sessions may be factors
