"""``runbook-router triage`` with every provider live: a real Prometheus, a real PostgreSQL,
the fake Kubernetes API. The crash-looping alert's findings must name the OOM kill and the
rollout before it, and point at the runbook sub-sections that apply."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from router.cli import main
from tests import factories
from tests.harness import fake_kube as k
from tests.pg import fresh_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def cluster():
    fake = k.FakeKube()
    fake.add(
        k.deployment("api", "shop"),
        k.replicaset("api", "shop", 6, k.ALERT_START - timedelta(days=2), "registry/api:1.4.1"),
        k.replicaset("api", "shop", 7, k.ROLLOUT_AT, "registry/api:1.4.2"),
        k.oom_killed_pod(),
    )
    fake.logs[("api-7abc-x1", "api", True)] = "starting\nfatal: out of memory"
    server = k.FakeKubeServer(fake)
    yield fake, server
    server.stop()


async def test_triage_runs_every_provider_and_gives_verdicts(
    tmp_path: Path, prometheus, cluster, capsys, monkeypatch
) -> None:
    fake, server = cluster
    kubeconfig = fake.kubeconfig(tmp_path / "kubeconfig", server.port)
    async with fresh_database() as dsn:
        config = tmp_path / "router.yaml"
        config.write_text(
            f"prometheus: {{url: '{prometheus.url}'}}\n"
            "diagnostics:\n"
            "  deadline_seconds: 8\n"
            f"  kubernetes: {{kubeconfig: '{kubeconfig}'}}\n"
            f"  postgres: {{targets: [{{name: main, dsn: '{dsn}'}}]}}\n"
        )
        payload = tmp_path / "payload.json"
        payload.write_bytes(
            factories.body(
                factories.alert(
                    "KubePodCrashLooping",
                    labels={"namespace": "shop", "pod": "api-7abc-x1", "container": "api"},
                    starts_at="2026-11-22T03:00:00Z",
                    expr='increase(kube_pod_container_status_restarts_total{namespace="shop"}[10m]) > 0',
                )
            )
        )
        for name in list(__import__("os").environ):
            if name.startswith("ROUTER_"):
                monkeypatch.delenv(name)
        code = await _run_cli(["triage", str(payload), "--config", str(config), "--json"])
    out = capsys.readouterr().out
    assert code == 0
    result = json.loads(out)
    assert result["classification"]["category"] == "crashloop"
    verdicts = {f["verdict"]["rule"]: f["verdict"] for f in result["findings"] if f["verdict"]}
    assert verdicts["oom-killed"]["runbook"]["anchor"] == "oomkilled"
    assert verdicts["deploy-before-alert"]["runbook"]["path"] == "rollback.md"
    runbook = result["runbook"]  # its commands filled from the labels and the pod's Deployment
    assert runbook["filled"].endswith("; found by diagnostics: deployment=api")
    assert "deployment/<deployment>" not in runbook["markdown"]
    assert "deployment/api" in runbook["markdown"]
    sources = {f["source"] for f in result["findings"]}
    assert {"kubernetes", "prometheus"} <= sources
    assert all(method == "GET" for method, _, _ in fake.requests)


async def _run_cli(argv: list[str]) -> int:
    import asyncio

    return await asyncio.to_thread(main, argv)
