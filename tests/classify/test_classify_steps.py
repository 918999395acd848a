"""The order of evidence: rule, declared runbook, runbook_url, expression, name, fallback."""

from __future__ import annotations

from pathlib import Path

import pytest
from classify_helpers import Section, TinyIndex, make_alert

from router.classify import EvidenceClassifier, RuleSet, load_rules
from router.classify.vocabulary import words_of

LATENCY_SECTION = Section("runbooks/latency.md", "p95-breach", "P95 breach", "latency")
DB_SECTION = Section("runbooks/database-saturation.md", "pool-exhausted", "Pool", "db_saturation")
CERT_SECTION = Section("runbooks/certs.md", "expiry", "Certificate expiry", "certificates")
ERROR_EXPR = (
    'sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) > 0.05'
)


@pytest.fixture
def index() -> TinyIndex:
    return TinyIndex(
        sections=[LATENCY_SECTION, DB_SECTION, CERT_SECTION],
        declares={
            "CheckoutSlow": LATENCY_SECTION,
            "CertExpiring": CERT_SECTION,
            "Uncategorised": Section("runbooks/misc.md", "notes"),
        },
        urls={
            "https://git.example.com/ops/runbooks/database-saturation.md#pool-exhausted": DB_SECTION
        },
    )


@pytest.fixture
def rules(tmp_path: Path) -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "categories: [{name: certificates}]\n"
        "rules:\n"
        "  - name: payments-page\n"
        "    matchers: ['team = payments', 'severity =~ \"critical|page\"']\n"
        "    category: error_rate\n"
        "    runbook: runbooks/error-rate.md#payments\n"
        "    routing: {slack_channel: '#payments', pagerduty_routing_key: payments}\n"
        "  - name: slow-checkout\n"
        "    matchers: ['alertname = CheckoutSlow', 'team = web']\n"
        "    category: latency\n",
        encoding="utf-8",
    )
    return load_rules([path])


def test_a_rule_beats_every_other_signal(rules: RuleSet, index: TinyIndex) -> None:
    alert = make_alert(
        "CheckoutSlow",
        "histogram_quantile(0.9, rate(http_request_duration_seconds_bucket[5m])) > 1",
        {"team": "payments", "severity": "critical"},
    )
    result = EvidenceClassifier(rules, index).classify(alert)
    assert (result.category, result.matched_by, result.rule) == (
        "error_rate",
        "rule",
        "payments-page",
    )
    assert result.runbook_ref == "runbooks/error-rate.md#payments"
    assert result.routing.slack_channel == "#payments"
    assert result.routing.pagerduty_routing_key == "payments"
    assert result.reasons[0].startswith(
        'rule: payments-page matched team="payments", severity=~"critical|page"'
    )


def test_a_rule_without_runbook_takes_the_declared_section(
    rules: RuleSet, index: TinyIndex
) -> None:
    result = EvidenceClassifier(rules, index).classify(
        make_alert("CheckoutSlow", labels={"team": "web"})
    )
    assert (result.matched_by, result.rule) == ("rule", "slow-checkout")
    assert result.runbook_ref == "runbooks/latency.md#p95-breach"


def test_a_declaring_runbook_section_decides_before_the_expression(index: TinyIndex) -> None:
    result = EvidenceClassifier(RuleSet(), index).classify(make_alert("CheckoutSlow", ERROR_EXPR))
    assert (result.category, result.matched_by) == ("latency", "runbook")
    assert result.runbook_ref == "runbooks/latency.md#p95-breach"
    assert result.reasons == ["runbook: runbooks/latency.md#p95-breach declares CheckoutSlow"]


def test_a_runbook_may_declare_a_user_category(rules: RuleSet, index: TinyIndex) -> None:
    result = EvidenceClassifier(rules, index).classify(make_alert("CertExpiring"))
    assert (result.category, result.matched_by, result.playbook) == (
        "certificates",
        "runbook",
        "generic",
    )


def test_a_runbook_without_category_keeps_its_ref_and_falls_through(index: TinyIndex) -> None:
    result = EvidenceClassifier(RuleSet(), index).classify(make_alert("Uncategorised", ERROR_EXPR))
    assert (result.category, result.matched_by) == ("error_rate", "expression")
    assert result.runbook_ref == "runbooks/misc.md#notes"


def test_runbook_url_into_the_library_decides(index: TinyIndex) -> None:
    url = "https://git.example.com/ops/runbooks/database-saturation.md#pool-exhausted"
    alert = make_alert("OrdersPool", ERROR_EXPR, annotations={"runbook_url": url})
    result = EvidenceClassifier(RuleSet(), index).classify(alert)
    assert (result.category, result.matched_by) == ("db_saturation", "annotation")
    assert result.runbook_ref == "runbooks/database-saturation.md#pool-exhausted"


def test_an_external_runbook_url_is_kept_but_does_not_decide(index: TinyIndex) -> None:
    url = "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping"
    alert = make_alert("SomethingElse", ERROR_EXPR, annotations={"runbook_url": url})
    result = EvidenceClassifier(RuleSet(), index).classify(alert)
    assert (result.category, result.matched_by) == ("error_rate", "expression")
    assert result.runbook_ref == url
    assert any("not in the library; kept as a link" in r for r in result.reasons)


def test_the_runbook_annotation_key_is_also_read(index: TinyIndex) -> None:
    url = "https://git.example.com/ops/runbooks/database-saturation.md#pool-exhausted"
    alert = make_alert("OrdersPool", annotations={"runbook": url})
    assert EvidenceClassifier(RuleSet(), index).classify(alert).matched_by == "annotation"


def test_no_evidence_at_all_is_unclassified_with_a_reason() -> None:
    result = EvidenceClassifier(RuleSet()).classify(make_alert("Heartbeat"))
    assert (result.category, result.matched_by, result.playbook) == (
        "unclassified",
        "fallback",
        "generic",
    )
    assert result.reasons[0] == "expr: the alert carries no expression"
    assert result.reasons[-1] == "fallback: no decisive evidence (no signals)"


def test_two_categories_too_close_fall_through() -> None:
    """Latency and errors in one expression: no margin, and the name breaks the tie."""
    expr = (
        'sum(rate(http_requests_total{code=~"5.."}[5m])) > 1 and '
        "histogram_quantile(0.9, rate(http_request_duration_seconds_bucket[5m])) > 1"
    )
    tie = EvidenceClassifier(RuleSet()).classify(make_alert("ApiUnhealthy", expr))
    assert (tie.category, tie.matched_by) == ("unclassified", "fallback")
    named = EvidenceClassifier(RuleSet()).classify(make_alert("ApiLatencyHigh", expr))
    assert (named.category, named.matched_by) == ("latency", "name")


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("KubePodCrashLooping", "kube pod crash looping"),
        ("LatencyP95Breaching", "latency p95 breaching"),
        ("OOMKilled", "oom killed"),
        ("mysql_too_many_connections", "mysql too many connections"),
        ("HTTP5xxErrors", "http 5xx errors"),
        ("Pod {{ $labels.pod }} is crash-looping.", "pod is crash looping"),
    ],
)
def test_names_split_into_words(name: str, words: str) -> None:
    assert words_of(name) == words
