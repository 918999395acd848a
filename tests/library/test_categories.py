from __future__ import annotations

import pytest

from router.library import RunbookLibrary
from router.library.categories import guess_category
from router.library.structure import kind


@pytest.mark.parametrize(
    ("title", "category"),
    [
        ("Application Down (5xx errors > 10%)", "error_rate"),
        ("Service Down / 503 Errors", "error_rate"),
        ("Availability Fast Burn", "error_rate"),
        ("Database Connection Pool Exhausted", "db_saturation"),
        ("Database Saturation (connections >80% for 5min)", "db_saturation"),
        ("Pod Crash Loop", "crashloop"),
        ("High Memory Usage / OOM Kills", "crashloop"),
        ("Latency Breach (p95 > 800ms)", "latency"),
        ("Slow responses", "latency"),
        ("Elasticsearch Index Corruption", None),
        ("TLS Certificate Expiring", None),
        ("4xx errors spike", None),
        ("Database Migration Failure", None),
        ("Disk almost full", None),
        ("Deployment Rollback", None),
        ("SLA Breach Storm", None),
    ],
)
def test_title_categories(title: str, category: str | None) -> None:
    assert guess_category(title, [], "").category == category


def test_alert_names_count_as_strong_evidence() -> None:
    guess = guess_category("Checkout", ["KubePodCrashLooping"], "")
    assert guess.category == "crashloop"
    assert any("alert 'crash'" in r for r in guess.reasons)


def test_first_paragraph_is_weak_evidence() -> None:
    assert guess_category("Checkout", [], "Requests are slow").category is None
    guess = guess_category("Checkout", [], "Requests are slow, latency p95 high, timeouts")
    assert guess.category == "latency"


def test_close_scores_give_no_category() -> None:
    guess = guess_category("Database errors", [], "")
    assert guess.category is None
    assert "too close" in guess.reasons[-1]


@pytest.mark.parametrize(
    ("ref", "category"),
    [
        ("portal.md#runbook-1-application-down-5xx-errors--10", "error_rate"),
        ("portal.md#runbook-2-database-connection-pool-exhausted", "db_saturation"),
        ("portal.md#runbook-3-high-memory-usage--oom-kills", "crashloop"),
        ("portal.md#runbook-4-elasticsearch-index-corruption", None),
        ("portal.md#runbook-5-tls-certificate-expiring", None),
        ("portal.md#runbook-6-slow-responses", "latency"),
        ("portal.md#runbook-7-4xx-errors-spike", None),
        ("numbered.md#1-checkout-latency-p95--600ms-for-10min", "latency"),
        ("numbered.md#2-refund-errors-5xx--2", "error_rate"),
        ("severity.md#kubepodcrashlooping", "crashloop"),
        ("severity.md#disk-almost-full", None),
    ],
)
def test_runbook_sections_get_categories(
    library: RunbookLibrary, ref: str, category: str | None
) -> None:
    section = library.get(ref)
    assert section is not None
    assert kind(section) == "topic"
    assert section.category == category


@pytest.mark.parametrize(
    "ref",
    [
        "portal.md#cause-2-database-unreachable",
        "portal.md#symptoms-2",
        "portal.md#helpdesk-runbooks",
        "numbered.md#contents",
        "numbered.md#alert",
        "severity.md#high-severity-alerts",
    ],
)
def test_parts_and_containers_get_no_category(library: RunbookLibrary, ref: str) -> None:
    section = library.get(ref)
    assert section is not None
    assert kind(section) != "topic" or section.category is None
    assert section.category is None


def test_front_matter_category_overrides(library: RunbookLibrary) -> None:
    section = library.get("frontmatter.md#search-cluster-runbook")
    assert section is not None
    assert section.category == "latency"
    assert section.category_reasons == ["front matter category"]
    assert library.best_for_category("latency") is section


def test_best_for_category(library: RunbookLibrary) -> None:
    best = library.best_for_category("crashloop")
    assert best is not None
    assert best.ref in {
        "severity.md#kubepodcrashlooping",
        "portal.md#runbook-3-high-memory-usage--oom-kills",
    }
    assert library.best_for_category("no-such-category") is None
