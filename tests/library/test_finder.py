from __future__ import annotations

from datetime import UTC, datetime

import pytest

from router.alerts import Alert
from router.library import LibraryFinder, RunbookLibrary
from router.triage import Classification


def alert(name: str) -> Alert:
    return Alert(
        status="firing", labels={"alertname": name}, startsAt=datetime(2025, 1, 1, tzinfo=UTC)
    )


@pytest.fixture
def finder(library: RunbookLibrary) -> LibraryFinder:
    return LibraryFinder(library)


def test_runbook_ref_in_the_library_wins(finder: LibraryFinder) -> None:
    found = finder.find(
        alert("CheckoutLatencyHigh"),
        Classification(category="latency", runbook_ref="table.md#backlog-growing"),
    )
    assert found is not None
    assert found.link.anchor == "backlog-growing"
    assert found.markdown.startswith("## Backlog growing")


def test_runbook_ref_as_url_into_the_library(finder: LibraryFinder) -> None:
    found = finder.find(
        alert("Unknown"),
        Classification(
            runbook_ref="https://github.com/acme/ops/blob/main/runbooks/table.md#consumers-down"
        ),
    )
    assert found is not None
    assert found.link.anchor == "consumers-down"


def test_declared_section_comes_next(finder: LibraryFinder) -> None:
    found = finder.find(
        alert("RefundErrorRate"),
        Classification(category="latency", runbook_ref="numbered.md#no-such-anchor"),
    )
    assert found is not None
    assert found.link.anchor == "2-refund-errors-5xx--2"
    assert found.related == []


def test_declared_section_beats_an_external_url(finder: LibraryFinder) -> None:
    found = finder.find(
        alert("KubePodCrashLooping"),
        Classification(
            runbook_ref="https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping"
        ),
    )
    assert found is not None
    assert found.link.path == "severity.md"


def test_external_url_when_nothing_is_declared(finder: LibraryFinder) -> None:
    url = "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodnotready"
    found = finder.find(
        alert("KubePodNotReady"), Classification(category="crashloop", runbook_ref=url)
    )
    assert found is not None
    assert found.link.url == url
    assert found.link.path is None
    assert found.markdown == ""


def test_category_fallback(finder: LibraryFinder, library: RunbookLibrary) -> None:
    found = finder.find(alert("SomethingNew"), Classification(category="db_saturation"))
    assert found is not None
    assert found.link.anchor == "runbook-2-database-connection-pool-exhausted"
    assert [s.title for s in found.subsections] == ["Symptoms", "Resolution"]
    assert found.link.url == library.best_for_category("db_saturation").link().url  # type: ignore[union-attr]


def test_nothing_found(finder: LibraryFinder) -> None:
    assert finder.find(alert("SomethingNew"), Classification(category="unclassified")) is None
    assert finder.find(alert("SomethingNew"), Classification(runbook_ref="missing.md#x")) is None


def test_a_link_to_a_whole_file_narrows_to_the_category_section() -> None:
    from router.alerts import Alert
    from router.config import BUILTIN_RUNBOOKS
    from router.library import LibraryFinder, RunbookLibrary
    from router.triage import Classification

    finder = LibraryFinder(RunbookLibrary.load([BUILTIN_RUNBOOKS]))
    alert = Alert(status="firing", labels={"alertname": "Slow"}, startsAt="2026-11-22T03:00:00Z")
    url = "https://git.example.com/ops/blob/main/runbooks/latency.md"
    whole = finder.find(alert, Classification(category="latency", runbook_ref=url))
    assert (whole.link.path, whole.link.anchor) == ("latency.md", "1-latency-breach")
    other = finder.find(alert, Classification(category="crashloop", runbook_ref=url))
    assert other.link.path == "latency.md"  # the category's section is elsewhere: keep the link
    anchored = finder.find(
        alert, Classification(category="latency", runbook_ref=url + "#investigation")
    )
    assert anchored.link.anchor == "investigation"
