"""The diagnostics engine: playbooks, concurrency under one deadline, verdicts → runbook sections."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from router.alerts import Alert
from router.config import BUILTIN_PLAYBOOKS, BUILTIN_RUNBOOKS
from router.diagnose.base import AlertContext, Check, CheckOutcome, ProviderError
from router.diagnose.engine import Diagnostics
from router.diagnose.playbooks import KNOWN_KINDS, load_playbooks
from router.library import LibraryFinder, RunbookLibrary
from router.redact import Redactor
from router.triage import Classification, Finding, TriageResult

LIBRARY = RunbookLibrary.load([BUILTIN_RUNBOOKS])
PLAYBOOKS = load_playbooks([BUILTIN_PLAYBOOKS])


class FactsProvider:
    """Answers every check with the facts given for its id, recording what it was asked."""

    def __init__(self, name: str, facts: dict[str, dict[str, Any]], delay: float = 0.0) -> None:
        self.name = name
        self.kinds = KNOWN_KINDS[name]
        self.facts = facts
        self.delay = delay
        self.calls: list[tuple[Check, float, float]] = []

    async def run(self, check: Check, context: AlertContext) -> CheckOutcome:
        started = time.monotonic()
        await asyncio.sleep(self.delay)
        self.calls.append((check, started, time.monotonic()))
        facts = self.facts.get(check.id, {})
        return CheckOutcome([Finding(title=f"{check.id} looked", source=self.name)], facts)

    async def close(self) -> None:
        pass


class HangingProvider(FactsProvider):
    async def run(self, check: Check, context: AlertContext) -> CheckOutcome:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


class FailingProvider(FactsProvider):
    async def run(self, check: Check, context: AlertContext) -> CheckOutcome:
        raise ProviderError("PostgreSQL orders-db: connection refused")


def triage_input(category: str, labels: dict[str, str] | None = None) -> TriageResult:
    alert = Alert(
        status="firing",
        labels={"alertname": "Test", **(labels or {})},
        startsAt="2026-11-22T03:00:00Z",
        generatorURL="http://prom/graph?g0.expr=up%20%3D%3D%200",
    )
    classification = Classification(category=category, playbook=category)
    runbook = LibraryFinder(LIBRARY).find(alert, classification)
    return TriageResult(alert=alert, classification=classification, runbook=runbook)


async def diagnose(
    providers: dict, result: TriageResult, seconds: float = 5.0, **kw
) -> list[Finding]:
    engine = Diagnostics(providers, PLAYBOOKS, LIBRARY, **kw)
    return await engine.diagnose(result, time.monotonic() + seconds)


def verdicts(findings: list[Finding]) -> dict[str, Finding]:
    return {f.verdict.rule: f for f in findings if f.verdict}


async def test_oom_killed_points_at_the_oom_section() -> None:
    kube = FactsProvider("kubernetes", {"pods": {"oom_killed": ["api-7d9c/api"]}})
    found = await diagnose({"kubernetes": kube}, triage_input("crashloop", {"namespace": "shop"}))
    oom = verdicts(found)["oom-killed"]
    assert oom.severity == "critical" and "api-7d9c/api" in oom.verdict.summary
    assert (oom.verdict.runbook.path, oom.verdict.runbook.anchor) == ("crashloop.md", "oomkilled")
    assert found[0] is oom  # verdicts come first


async def test_rollout_before_alert_points_at_rollback() -> None:
    rollout = {"within_window": True, "revision": 7, "minutes_before_alert": 6.2}
    kube = FactsProvider("kubernetes", {"rollout": rollout})
    found = await diagnose({"kubernetes": kube}, triage_input("latency", {"namespace": "shop"}))
    verdict = verdicts(found)["deploy-before-alert"].verdict
    assert "revision 7 6 min before" in verdict.summary
    assert verdict.runbook.path == "rollback.md"


async def test_one_application_holding_connections_is_named() -> None:
    pg = FactsProvider(
        "postgres",
        {"connections": {"top_application": "orders-api", "top_application_share": 0.8}},
    )
    found = await diagnose({"postgres": pg}, triage_input("db_saturation"))
    verdict = verdicts(found)["one-application"].verdict
    assert verdict.summary.startswith("orders-api holds 80%")
    assert verdict.runbook.anchor == "one-application-holds-most-connections"


async def test_hpa_at_max_points_at_cpu_saturation() -> None:
    kube = FactsProvider("kubernetes", {"hpa": {"at_max": True, "current": 10, "max": 10}})
    found = await diagnose({"kubernetes": kube}, triage_input("latency", {"namespace": "shop"}))
    verdict = verdicts(found)["hpa-at-max"].verdict
    assert "10/10" in verdict.summary and verdict.runbook.anchor == "cpu-saturation--hpa-at-max"


async def test_checks_run_concurrently() -> None:
    kube = FactsProvider("kubernetes", {}, delay=0.3)
    await diagnose({"kubernetes": kube}, triage_input("crashloop", {"namespace": "shop"}))
    assert len(kube.calls) == 4  # pods, events, logs, rollout
    latest_start = max(start for _, start, _ in kube.calls)
    earliest_end = min(end for _, _, end in kube.calls)
    assert latest_start < earliest_end  # every check had started before any finished


async def test_a_hanging_provider_cannot_hold_the_deadline() -> None:
    prom = FactsProvider("prometheus", {"expression": {"firing_now": False}})
    kube = HangingProvider("kubernetes", {})
    started = time.monotonic()
    found = await diagnose(
        {"prometheus": prom, "kubernetes": kube},
        triage_input("generic", {"namespace": "shop", "deployment": "api"}),
        seconds=0.5,
    )
    assert time.monotonic() - started < 2
    titles = [f.title for f in found]
    assert "Kubernetes API: timed out after 0.5 s" in titles
    assert "no-longer-true" in verdicts(found)  # the other findings still arrive


async def test_provider_errors_become_findings() -> None:
    found = await diagnose(
        {"postgres": FailingProvider("postgres", {})}, triage_input("db_saturation")
    )
    assert "PostgreSQL orders-db: connection refused" in [f.title for f in found]
    assert not verdicts(found)


async def test_missing_labels_and_providers_are_reported_not_guessed() -> None:
    kube = FactsProvider("kubernetes", {})
    found = await diagnose({"kubernetes": kube}, triage_input("crashloop"))  # no namespace label
    assert kube.calls == []
    notes = {f.title: f for f in found}
    skipped = notes["Skipped checks: the alert lacks the labels they need"].evidence[0].text
    assert "kubernetes/pods (pods): no namespace" in skipped
    assert "Not checked (not configured): Prometheus" in notes


async def test_params_are_rendered_from_labels() -> None:
    kube = FactsProvider("kubernetes", {})
    labels = {"namespace": "shop", "pod": "api-1", "container": "api"}
    await diagnose({"kubernetes": kube}, triage_input("crashloop", labels))
    pods = next(check for check, _, _ in kube.calls if check.id == "pods")
    assert pods.params["namespace"] == "shop" and pods.params["pod"] == "api-1"
    assert pods.params["deployment"] == ""


async def test_secrets_are_redacted_from_findings() -> None:
    pg = FactsProvider(
        "postgres",
        {
            "connections": {
                "top_application": "postgresql://app:hunter2@db/x",
                "top_application_share": 0.9,
            }
        },
    )
    found = await diagnose(
        {"postgres": pg}, triage_input("db_saturation"), redactor=Redactor(["hunter2"])
    )
    assert "hunter2" not in str([f.model_dump() for f in found])


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "book.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("name: x\nchecks:\n  - id: a\n    provider: nagios\n    kind: q\n", 4, "unknown provider"),
        (
            "name: x\nchecks:\n  - id: a\n    provider: prometheus\n    kind: scrape\n",
            5,
            "no check 'scrape'",
        ),
        (
            "name: x\nchecks:\n  - {id: a, provider: http, kind: probe}\n  - {id: a, provider: http, kind: probe}\n",
            4,
            "duplicate check id",
        ),
        (
            "name: x\nchecks: []\nverdicts:\n  - id: v\n    when: 'pods.oom_killed'\n    say: x\n",
            5,
            "unknown check id(s): pods",
        ),
        (
            "name: x\nchecks:\n  - id: a\n    provider: http\n    kind: probe\n    params: {url: '{{ x'}\n",
            6,
            "syntax",
        ),
    ],
)
def test_playbook_errors_name_file_and_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    from router.yamlfile import ConfigError

    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_playbooks([path])
    assert (info.value.path, info.value.line) == (str(path), line)
    assert message in info.value.message


async def test_sandbox_refuses_unsafe_templates(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name: generic\nchecks:\n  - id: a\n    provider: http\n    kind: probe\n"
        "    params: {url: '{{ labels.__class__.__mro__ }}'}\n",
    )
    http = FactsProvider("http", {})
    engine = Diagnostics({"http": http}, load_playbooks([path]), LIBRARY)
    await engine.diagnose(triage_input("generic"), time.monotonic() + 2)
    (call,) = http.calls
    assert call[0].params["url"] == ""  # the sandbox hides dunder attributes


async def test_a_template_that_fails_skips_its_check_visibly(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name: generic\nchecks:\n  - id: a\n    provider: http\n    kind: probe\n"
        "    params: {url: '{{ labels.items() | map(\"missing_filter\") | list }}'}\n",
    )
    http = FactsProvider("http", {})
    engine = Diagnostics({"http": http}, load_playbooks([path]), LIBRARY)
    found = await engine.diagnose(triage_input("generic"), time.monotonic() + 2)
    assert http.calls == []
    assert "http/probe (a)" in found[-1].evidence[0].text
