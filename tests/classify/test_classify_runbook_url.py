"""The runbook_url annotation against the real example library: what the reasons say."""

from __future__ import annotations

from router.alerts import Alert
from router.classify import EvidenceClassifier, RuleSet
from router.config import BUILTIN_RUNBOOKS
from router.library import RunbookLibrary

LIBRARY = RunbookLibrary.load([BUILTIN_RUNBOOKS])


def classify(url: str):
    alert = Alert(
        status="firing",
        labels={"alertname": "SomethingNew"},
        annotations={"runbook_url": url},
        startsAt="2026-11-22T03:00:00Z",
    )
    return EvidenceClassifier(RuleSet(), LIBRARY).classify(alert)


def test_a_url_into_a_categorised_section_decides() -> None:
    result = classify("https://git.example.com/ops/blob/main/runbooks/crashloop.md#pod-crash-loops")
    assert (result.category, result.matched_by) == ("crashloop", "annotation")
    assert result.runbook_ref == "crashloop.md#pod-crash-loops"


def test_a_url_into_the_library_without_category_says_so() -> None:
    result = classify("https://git.example.com/ops/blob/main/runbooks/rollback.md")
    assert result.category == "unclassified"
    assert any("rollback.md" in r and "which has no category" in r for r in result.reasons)


def test_an_external_url_is_kept_as_a_link() -> None:
    result = classify("https://wiki.example.com/runbooks/mystery")
    assert result.runbook_ref == "https://wiki.example.com/runbooks/mystery"
    assert any("not in the library; kept as a link" in r for r in result.reasons)
