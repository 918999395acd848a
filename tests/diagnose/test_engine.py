"""The diagnostics engine: concurrency under one deadline, failures as findings, redaction.

The providers here are small in-test classes that answer with given facts, sleep,
hang, or fail: what is tested is the engine, not the providers.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from router.alerts import Alert
from router.config import BUILTIN_PLAYBOOKS, BUILTIN_RUNBOOKS, Settings
from router.diagnose.base import AlertContext, Check, CheckOutcome, ProviderError
from router.diagnose.catalog import KNOWN_KINDS
from router.diagnose.engine import Diagnostics, build_diagnostics, configured_playbooks
from router.diagnose.playbooks import load_playbooks
from router.library import LibraryFinder, RunbookLibrary
from router.redact import Redactor
from router.triage import Classification, Evidence, Finding, TriageResult

LIBRARY = RunbookLibrary.load([BUILTIN_RUNBOOKS])
PLAYBOOKS = load_playbooks([BUILTIN_PLAYBOOKS])


class FactsProvider:
    """Answers every check with the facts given for its id, recording when it ran."""

    def __init__(self, name: str, facts: dict[str, Any] | None = None, delay: float = 0) -> None:
        self.name = name
        self.kinds = KNOWN_KINDS[name]
        self.facts = facts or {}
        self.delay = delay
        self.calls: list[tuple[Check, float, float]] = []

    async def run(self, check: Check, context: AlertContext) -> CheckOutcome:
        started = time.monotonic()
        await asyncio.sleep(self.delay)
        self.calls.append((check, started, time.monotonic()))
        finding = Finding(title=f"{check.id} looked", source=self.name)
        return CheckOutcome([finding], self.facts.get(check.id, {}))

    async def close(self) -> None:
        pass


class HangingProvider(FactsProvider):
    async def run(self, check: Check, context: AlertContext) -> CheckOutcome:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


class StubbornProvider(FactsProvider):
    """Ignores the first cancellation, as a badly written client library might."""

    async def run(self, check: Check, context: AlertContext) -> CheckOutcome:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(3)
        raise AssertionError("unreachable")


class FailingProvider(FactsProvider):
    def __init__(self, name: str, error: Exception) -> None:
        super().__init__(name)
        self.error = error

    async def run(self, check: Check, context: AlertContext) -> CheckOutcome:
        raise self.error


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
    providers: dict[str, Any], result: TriageResult, seconds: float = 5.0, **kw: Any
) -> list[Finding]:
    engine = Diagnostics(providers, kw.pop("playbooks", PLAYBOOKS), LIBRARY, **kw)
    return (await engine.diagnose(result, time.monotonic() + seconds)).findings


def playbook(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "book.yaml"
    path.write_text(text)
    return load_playbooks([path])


def verdicts(findings: list[Finding]) -> dict[str, Finding]:
    return {f.verdict.rule: f for f in findings if f.verdict}


def titles(findings: list[Finding]) -> list[str]:
    return [f.title for f in findings]


SHOP = {"namespace": "shop", "deployment": "api"}


async def test_oom_killed_end_to_end() -> None:
    kube = FactsProvider("kubernetes", {"pods": {"oom_killed": ["api-7d9c/api"]}})
    found = await diagnose({"kubernetes": kube}, triage_input("crashloop", SHOP))
    oom = verdicts(found)["oom-killed"]
    assert oom.verdict and oom.verdict.runbook
    assert (oom.verdict.runbook.path, oom.verdict.runbook.anchor) == ("crashloop.md", "oomkilled")
    assert found[0] is oom  # verdicts come first
    assert {"pods looked", "events looked", "logs looked", "rollout looked"} <= set(titles(found))


async def test_verdicts_come_first_by_severity_then_the_evidence(tmp_path: Path) -> None:
    books = playbook(
        tmp_path,
        "name: generic\nchecks:\n  - {id: a, provider: http, kind: probe}\nverdicts:\n"
        "  - {id: minor, when: a.x, say: minor, severity: info}\n"
        "  - {id: major, when: a.x, say: major, severity: critical}\n",
    )
    http = FactsProvider("http", {"a": {"x": True}})
    found = await diagnose({"http": http}, triage_input("generic"), playbooks=books)
    assert titles(found) == ["major", "minor", "a looked"]


async def test_unknown_playbooks_fall_back_to_generic() -> None:
    prom = FactsProvider("prometheus", {"expression": {"firing_now": False}})
    found = await diagnose({"prometheus": prom}, triage_input("no-such-playbook"))
    assert "no-longer-true" in verdicts(found)


async def test_checks_run_concurrently(tmp_path: Path) -> None:
    books = playbook(
        tmp_path,
        "name: generic\nchecks:\n"
        + "".join(f"  - {{id: c{i}, provider: http, kind: probe}}\n" for i in range(3)),
    )
    http = FactsProvider("http", delay=0.5)
    await diagnose({"http": http}, triage_input("generic"), playbooks=books)
    assert len(http.calls) == 3
    latest_start = max(start for _, start, _ in http.calls)
    earliest_end = min(end for _, _, end in http.calls)
    assert latest_start < earliest_end  # all three were running at the same time


async def test_a_hanging_provider_is_cut_at_the_deadline_and_the_rest_arrives() -> None:
    prom = FactsProvider("prometheus", {"expression": {"firing_now": False}})
    kube = HangingProvider("kubernetes")
    started = time.monotonic()
    found = await diagnose(
        {"prometheus": prom, "kubernetes": kube}, triage_input("generic", SHOP), seconds=0.5
    )
    assert time.monotonic() - started < 1.0
    (timeout,) = [f for f in found if f.source == "kubernetes"]
    assert timeout.title == "Kubernetes API: timed out after 0.5 s"
    assert timeout.severity == "warning"
    # one finding for both checks, each named
    assert [e.text for e in timeout.evidence] == [
        "Recent events of the labelled workload (kubernetes/events)",
        "Recent rollouts (kubernetes/rollout)",
    ]
    assert "no-longer-true" in verdicts(found) and "expression looked" in titles(found)


async def test_a_provider_that_ignores_cancellation_cannot_hold_the_deadline() -> None:
    prom = FactsProvider("prometheus")
    started = time.monotonic()
    found = await diagnose(
        {"prometheus": prom, "kubernetes": StubbornProvider("kubernetes")},
        triage_input("generic", SHOP),
        seconds=0.3,
    )
    assert time.monotonic() - started < 1.0  # the provider would have taken 3 s more
    assert "Kubernetes API: timed out after 0.3 s" in titles(found)
    assert "expression looked" in titles(found)


async def test_a_check_timeout_shorter_than_the_deadline(tmp_path: Path) -> None:
    books = playbook(
        tmp_path,
        "name: generic\nchecks:\n  - {id: slow, provider: http, kind: probe, timeout: 0.2}\n"
        "  - {id: fast, provider: http, kind: probe}\n",
    )
    started = time.monotonic()
    found = await diagnose(
        {"http": HangingProvider("http")}, triage_input("generic"), seconds=0.6, playbooks=books
    )
    timeouts = {f.title: f for f in found}
    assert "HTTP probe: timed out after 0.2 s" in timeouts
    assert "HTTP probe: timed out after 0.6 s" in timeouts
    assert time.monotonic() - started < 1.2


async def test_the_engine_reads_the_deadline_on_its_own_clock() -> None:
    kube = FactsProvider("kubernetes")
    found = await diagnose(
        {"kubernetes": kube},
        triage_input("crashloop", SHOP),
        clock=lambda: time.monotonic() + 60,  # as if the deadline had long passed
    )
    assert kube.calls == []
    assert "Kubernetes API: timed out after 0 s" in titles(found)


async def test_provider_errors_become_warnings() -> None:
    failing = FailingProvider("postgres", ProviderError("PostgreSQL orders-db: connection refused"))
    found = await diagnose({"postgres": failing}, triage_input("db_saturation"))
    (error,) = [f for f in found if f.source == "postgres"]
    assert error.title == "PostgreSQL orders-db: connection refused"
    assert error.severity == "warning" and len(error.evidence) == 3  # the 3 checks it failed
    assert not verdicts(found)  # no facts, no verdicts


async def test_a_crash_is_a_finding_without_a_traceback(caplog: Any) -> None:
    boom = FailingProvider("prometheus", ValueError("secret internals at line 3"))
    found = await diagnose({"prometheus": boom}, triage_input("generic"))
    (crash,) = [f for f in found if f.source == "prometheus"]
    assert crash.title == "prometheus/alert_expression crashed: ValueError"
    assert "secret internals" not in str(crash.model_dump())
    assert "Traceback" not in str(crash.model_dump())
    assert any("crashed" in r.message and r.exc_info for r in caplog.records)  # logged in full


async def test_missing_labels_and_providers_are_reported_not_guessed() -> None:
    kube = FactsProvider("kubernetes")
    found = await diagnose({"kubernetes": kube}, triage_input("crashloop"))  # no namespace
    assert kube.calls == []
    assert (
        "Skipped kubernetes/pods, kubernetes/events, kubernetes/logs, kubernetes/rollout:"
        " the alert has no namespace label"
    ) in titles(found)
    assert "Not checked: Prometheus (not configured)" in titles(found)
    assert all(f.severity == "info" for f in found)


async def test_skips_with_different_reasons_are_listed_in_one_finding() -> None:
    kube = FactsProvider("kubernetes")
    found = await diagnose({"kubernetes": kube}, triage_input("generic", {"namespace": "shop"}))
    (skipped,) = [f for f in found if f.title.startswith("Skipped")]
    assert skipped.title == "Skipped kubernetes/rollout: the alert has no deployment label"
    assert [c.id for c, _, _ in kube.calls] == ["events"]

    found = await diagnose(
        {"kubernetes": kube, "prometheus": FactsProvider("prometheus")}, triage_input("latency")
    )
    (skipped,) = [f for f in found if f.title.startswith("Skipped")]
    assert skipped.title == "Skipped 6 checks: the alert lacks what they need"
    assert skipped.evidence[0].text == (
        "prometheus/query (p99), prometheus/range (p95): the alert has no selector\n"
        "prometheus/query (throttling), prometheus/query (cpu), kubernetes/hpa, "
        "kubernetes/rollout: the alert has no namespace label"
    )


async def test_params_are_rendered_from_labels_vars_and_earlier_params() -> None:
    prom = FactsProvider("prometheus")
    labels = {"namespace": "shop", "service": "checkout"}
    await diagnose({"prometheus": prom}, triage_input("latency", labels))
    checks = {c.id: c for c, _, _ in prom.calls}
    selector = 'service="checkout", namespace="shop"'
    assert checks["p99"].params["selector"] == selector
    assert f"{selector}}}[5m]" in checks["p99"].params["query"]
    assert 'pod=~"checkout-.+"' in checks["cpu"].params["query"]
    assert checks["p95"].params["minutes"] == 60  # non-strings pass through


async def test_blank_labels_render_empty_not_none() -> None:
    kube = FactsProvider("kubernetes")
    await diagnose({"kubernetes": kube}, triage_input("crashloop", {"namespace": "shop"}))
    pods = next(c for c, _, _ in kube.calls if c.id == "pods")
    assert pods.params == {"namespace": "shop", "pod": "", "deployment": "", "container": ""}
    assert pods.title == "Restarting containers"


async def test_the_sandbox_hides_what_the_load_check_cannot_see(tmp_path: Path) -> None:
    books = playbook(
        tmp_path,
        "name: generic\nchecks:\n  - id: a\n    provider: http\n    kind: probe\n"
        "    params: {url: \"{{ labels | attr('__cla' ~ 'ss__') }}\"}\n",
    )
    http = FactsProvider("http")
    await diagnose({"http": http}, triage_input("generic"), playbooks=books)
    ((check, _, _),) = http.calls
    assert check.params["url"] == ""  # not "<class 'dict'>"


async def test_a_template_that_fails_skips_its_check_visibly(tmp_path: Path) -> None:
    books = playbook(
        tmp_path,
        "name: generic\nchecks:\n  - id: a\n    provider: http\n    kind: probe\n"
        "    params: {url: '{{ labels.items() | map(\"missing_filter\") | list }}'}\n",
    )
    http = FactsProvider("http")
    found = await diagnose({"http": http}, triage_input("generic"), playbooks=books)
    assert http.calls == []
    assert found[-1].title.startswith("Skipped http/probe (a): its parameters failed to render")


async def test_secrets_are_redacted_from_everything_that_leaves() -> None:
    pg = FactsProvider(
        "postgres",
        {
            "connections": {
                "used": 90,
                "usable": 97,
                "used_ratio": 0.93,
                "database": {
                    "name": "x",
                    "used": 90,
                    "limit": 97,
                    "used_ratio": 0.93,
                    "top_application": "postgresql://app:hunter2@db/x",
                    "top_application_count": 81,
                    "top_application_share": 0.9,
                },
            }
        },
    )

    class Leaky(FactsProvider):
        async def run(self, check: Check, context: AlertContext) -> CheckOutcome:
            table = Evidence(kind="table", columns=["dsn"], rows=[["dbname=x password=s3cr3t"]])
            return CheckOutcome([Finding(title="ok hunter2", source="x", evidence=[table])])

    failing = FailingProvider("kubernetes", ProviderError("Kubernetes API: token hunter2 refused"))
    found = await diagnose(
        {"postgres": pg, "prometheus": Leaky("prometheus"), "kubernetes": failing},
        triage_input("db_saturation", SHOP),
        redactor=Redactor(["hunter2"]),
    )
    text = str([f.model_dump() for f in found])
    assert "hunter2" not in text and "s3cr3t" not in text  # known value, then a pattern
    assert verdicts(found)["one-application"].title.startswith("postgresql://app:***@db/x holds")


async def test_build_diagnostics_keeps_the_builtins_under_user_playbooks(tmp_path: Path) -> None:
    (tmp_path / "crashloop.yaml").write_text(
        "name: crashloop\nchecks:\n  - {id: pods, provider: kubernetes, kind: pods}\n"
        "verdicts:\n  - {id: ours, when: pods.x, say: 'ours {{ pods.x }}'}\n"
    )
    settings = Settings(playbooks=[tmp_path], prometheus={"password": "pr0m-pass"})
    kube = FactsProvider("kubernetes", {"pods": {"x": "pr0m-pass"}})
    engine = build_diagnostics(
        settings, configured_playbooks(settings), LIBRARY, {"kubernetes": kube}
    )
    assert engine.playbooks.names() == [
        "crashloop",
        "db_saturation",
        "error_rate",
        "generic",
        "latency",
    ]
    found = (await engine.diagnose(triage_input("crashloop"), time.monotonic() + 2)).findings
    assert verdicts(found)["ours"].title == "ours ***"  # the configured secret is redacted
