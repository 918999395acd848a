"""The Kubernetes provider through the real lightkube client against a fake API server."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from router.alerts import Alert
from router.config import KubernetesSettings
from router.diagnose.base import AlertContext, Check, ProviderError
from router.diagnose.kubernetes import _WORKLOADS, KubernetesProvider
from router.triage import Classification
from tests.harness import fake_kube as k

NS = "shop"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def kube() -> Iterator[tuple[k.FakeKube, k.FakeKubeServer]]:
    fake = k.FakeKube()
    fake.add(
        k.deployment("api", NS),
        k.replicaset("api", NS, 6, k.ALERT_START - timedelta(days=2), "registry/api:1.4.1"),
        k.replicaset("api", NS, 7, k.ROLLOUT_AT, "registry/api:1.4.2"),
        k.pod(
            "api-7abc-x1",
            NS,
            "api-7abc",
            "api",
            restarts=7,
            last_reason="OOMKilled",
            exit_code=137,
            waiting="CrashLoopBackOff",
            ready=False,
        ),
        k.pod("api-7abc-x2", NS, "api-7abc", "api"),
        k.event(
            NS, "Pod", "api-7abc-x1", "BackOff", "Back-off restarting failed container", count=12
        ),
        k.event(
            NS,
            "Pod",
            "api-7abc-x1",
            "Unhealthy",
            "Liveness probe failed: HTTP probe failed with statuscode: 500",
            count=3,
        ),
        k.event(
            NS,
            "Pod",
            "api-7abc-x2",
            "FailedMount",
            'MountVolume.SetUp failed for volume "creds" : secret "db-creds" not found',
        ),
        k.event(NS, "Pod", "other-pod", "Failed", "unrelated"),
        k.hpa("api", NS, "api", current=10, maximum=10),
    )
    lines = [f"2026-11-22T02:56:{i:02d}Z INFO handled request {i}" for i in range(80)]
    lines += ["2026-11-22T02:56:59Z ERROR cache warmup allocated 900MiB", "fatal: out of memory"]
    fake.logs[("api-7abc-x1", "api", True)] = "\n".join(lines)
    server = k.FakeKubeServer(fake)
    yield fake, server
    server.stop()


@pytest.fixture
def provider(kube, tmp_path: Path) -> Iterator[KubernetesProvider]:
    fake, server = kube
    config = fake.kubeconfig(tmp_path / "kubeconfig", server.port)
    made = KubernetesProvider.from_settings(
        KubernetesSettings(kubeconfig=config, timeout_seconds=1.0, log_lines=20, log_bytes=4000)
    )
    assert made is not None
    yield made


def context() -> AlertContext:
    alert = Alert(
        status="firing",
        labels={"alertname": "KubePodCrashLooping", "namespace": NS},
        startsAt=k.ALERT_START,
    )
    return AlertContext(alert, Classification(), datetime.now(UTC), time.monotonic() + 10)


def check(kind: str, **params: object) -> Check:
    return Check(kind, "kubernetes", kind, "", {"namespace": NS, **params})


async def test_pods_show_the_oom_kill_and_the_deployment(provider, kube) -> None:
    outcome = await provider.run(check("pods", pod="api-7abc-x1"), context())
    facts = outcome.facts
    assert facts["oom_killed"] == ["api-7abc-x1/api"]
    assert facts["termination_reasons"] == {"OOMKilled": 1}
    assert facts["waiting_reasons"] == {"CrashLoopBackOff": 1}
    assert facts["not_ready"] == ["api-7abc-x1"] and facts["max_restarts"] == 7
    assert facts["memory_limits"] == {"api-7abc-x1/api": 256 * 1024**2}
    assert facts["deployment"] == "api"  # pod → ReplicaSet → Deployment
    assert (
        outcome.findings[0].title
        == "api-7abc-x1/api: OOMKilled (exit 137), 7 restarts, memory limit 256Mi"
    )


async def test_pods_of_a_deployment_by_its_selector(provider, kube) -> None:
    fake, _ = kube
    outcome = await provider.run(check("pods", deployment="api"), context())
    assert [p["name"] for p in outcome.facts["pods"]] == ["api-7abc-x1", "api-7abc-x2"]
    assert any(
        "labelSelector=app%3Dapi" in str(q) or q.get("labelSelector") == "app=api"
        for _, _, q in fake.requests
    )


async def test_pods_name_the_one_pod_in_trouble_for_the_runbook_commands(provider, kube) -> None:
    outcome = await provider.run(check("pods", deployment="api"), context())
    assert outcome.names == {
        "deployment": "api",
        "pod": "api-7abc-x1",  # x2 is ready and never restarted
        "node": "node-1",
        "container": "api",
    }
    by_pod = await provider.run(check("pods", pod="api-7abc-x2"), context())
    assert by_pod.names["deployment"] == "api"  # pod → ReplicaSet → Deployment


async def test_pods_name_no_pod_when_two_are_in_trouble(provider, kube) -> None:
    fake, _ = kube
    fake.add(k.pod("api-7abc-x3", NS, "api-7abc", "api", restarts=2, ready=False))
    outcome = await provider.run(check("pods", deployment="api"), context())
    assert outcome.names == {"deployment": "api"}  # which pod is a guess: not named


async def test_events_of_the_workload(provider) -> None:
    outcome = await provider.run(check("events", deployment="api"), context())
    facts = outcome.facts
    assert facts["probe_failures"] == 3 and facts["mount_failures"] == 1
    assert facts["missing_config"] == ["db-creds"]
    assert "Failed" not in facts["reasons"]  # another pod's event
    assert facts["image_pull_failed"] is False


async def test_previous_log_tail_is_bounded(provider, kube) -> None:
    fake, _ = kube
    outcome = await provider.run(check("logs", pod="api-7abc-x1"), context())
    facts = outcome.facts
    assert facts["previous"] is True and facts["lines"] == 20
    assert facts["error_lines"] == [
        "2026-11-22T02:56:59Z ERROR cache warmup allocated 900MiB",
        "fatal: out of memory",
    ]
    (_, _, query) = next(r for r in fake.requests if r[1].endswith("/log"))
    assert query == {
        "container": "api",
        "previous": "true",
        "tailLines": "20",
        "limitBytes": "4000",
    }
    assert outcome.findings[0].evidence[0].kind == "log"


async def test_rollout_six_minutes_before_the_alert(provider) -> None:
    outcome = await provider.run(check("rollout", pod="api-7abc-x1", window_minutes=30), context())
    facts = outcome.facts
    assert (facts["revision"], facts["previous_revision"]) == (7, 6)
    assert facts["minutes_before_alert"] == pytest.approx(6.0)
    assert facts["within_window"] is True and facts["image_changed"] is True
    assert facts["images"] == {
        "previous": ["registry/api:1.4.1"],
        "current": ["registry/api:1.4.2"],
    }
    assert (
        "revision 7 (image registry/api:1.4.2 ← registry/api:1.4.1) 6 min before"
        in outcome.findings[0].title
    )


async def test_hpa_at_max(provider) -> None:
    outcome = await provider.run(check("hpa", deployment="api"), context())
    assert outcome.facts["at_max"] is True and outcome.facts["current"] == 10
    assert outcome.findings[0].severity == "critical"


async def test_forbidden_is_named_and_token_never_shown(provider, kube) -> None:
    fake, _ = kube
    fake.fail["/pods"] = 403
    with pytest.raises(ProviderError) as info:
        await provider.run(check("pods", deployment="api"), context())
    assert "Kubernetes API: 403 Forbidden" in str(info.value)
    assert k.TOKEN not in str(info.value)


async def test_a_hanging_api_times_out(provider, kube) -> None:
    fake, _ = kube
    fake.hang.add("/events")
    started = time.monotonic()
    with pytest.raises(ProviderError, match="timed out after 1 s"):
        await provider.run(check("events"), context())
    assert time.monotonic() - started < 3


async def test_only_get_requests_with_the_bearer_token(provider, kube) -> None:
    fake, _ = kube
    for kind in ("pods", "events", "logs", "rollout", "hpa"):
        await provider.run(check(kind, pod="api-7abc-x1"), context())
    assert fake.requests and all(method == "GET" for method, _, _ in fake.requests)


def test_not_configured_without_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    assert KubernetesProvider.from_settings(KubernetesSettings()) is None
    assert KubernetesProvider.from_settings(KubernetesSettings(enabled=False)) is None


def granted_by_rbac() -> set[tuple[str, str, str]]:
    """(API group, resource, verb) triples the ClusterRole in ``deploy/rbac.yaml`` grants."""
    documents = yaml.safe_load_all((REPO / "deploy" / "rbac.yaml").read_text())
    role = next(d for d in documents if d["kind"] == "ClusterRole")
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def rbac_request(path: str) -> tuple[str, str, str]:
    """``/apis/apps/v1/namespaces/shop/statefulsets/db`` → ``("apps", "statefulsets", "get")``."""
    parts = path.strip("/").split("/")
    group = "" if parts[0] == "api" else parts[1]
    plural, *rest = parts[parts.index("namespaces") + 2 :]
    resource = f"{plural}/{rest[1]}" if len(rest) == 2 else plural
    return group, resource, "get" if rest else "list"


async def test_rbac_grants_every_read_the_provider_makes_and_nothing_that_writes(
    provider, kube
) -> None:
    fake, _ = kube
    workloads = [{"pod": "api-7abc-x1"}, {"selector": "app=api"}]
    workloads += [{kind: "api"} for kind in _WORKLOADS]  # deployment, statefulset, daemonset
    for kind in sorted(provider.kinds):
        for params in workloads:
            with contextlib.suppress(ProviderError):
                await provider.run(check(kind, **params), context())
    used = {rbac_request(path) for _, path, _ in fake.requests}
    assert {resource for _, resource, _ in used} >= {"statefulsets", "daemonsets", "pods/log"}
    granted = granted_by_rbac()
    assert used <= granted, f"deploy/rbac.yaml lacks {sorted(used - granted)}"
    assert {verb for _, _, verb in granted} <= {"get", "list", "watch"}


@pytest.mark.parametrize(
    "params",
    [
        {"pod": "../secrets/db-creds"},
        {"namespace": "shop/../kube-system", "pod": "api-7abc-x1"},
        {"deployment": "api?watch=true"},
        {"pod": "api-7abc-x1", "container": "api\n"},
    ],
)
async def test_label_values_that_are_not_kubernetes_names_are_never_requested(
    provider, kube, params
) -> None:
    fake, _ = kube
    before = len(fake.requests)
    with pytest.raises(ProviderError, match="is not a Kubernetes name"):
        await provider.run(check("pods", **params), context())
    assert len(fake.requests) == before
