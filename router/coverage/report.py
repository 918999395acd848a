"""Run the router's own classify and runbook steps on every alerting rule."""

from __future__ import annotations

from dataclasses import dataclass

from router.alerts import Alert
from router.coverage.sources import AlertingRule
from router.library.finder import LibraryFinder
from router.library.model import Section
from router.library.query import alert_query
from router.pipeline import Classifier


@dataclass(frozen=True)
class RuleCoverage:
    """What the router would attach to one rule's alert: category, runbook and why."""

    rule: AlertingRule
    category: str
    runbook: str | None  # ``path#anchor``, or an external URL
    why: str

    @property
    def covered(self) -> bool:
        return self.runbook is not None


@dataclass(frozen=True)
class CoverageReport:
    """Every rule's coverage, missing ones first, and the sections no rule reaches."""

    rules: list[RuleCoverage]
    unreached: list[Section]

    @property
    def covered(self) -> int:
        return sum(r.covered for r in self.rules)

    @property
    def percent(self) -> float:
        return 100.0 * self.covered / len(self.rules) if self.rules else 100.0

    @property
    def summary(self) -> str:
        return f"{self.covered} of {len(self.rules)} alerting rules have a runbook section"


def build_report(
    rules: list[AlertingRule],
    classifier: Classifier,
    finder: LibraryFinder,
    prometheus_url: str,
) -> CoverageReport:
    """Classify each rule's alert and find its section, as the pipeline would."""
    results: list[RuleCoverage] = []
    reached: set[Section] = set()
    for rule in rules:
        alert = rule.alert(prometheus_url)
        classification = classifier.classify(alert)
        choice = finder.choose(alert, classification)
        if choice is not None:
            reached.add(choice.section)
            results.append(
                RuleCoverage(rule, classification.category, choice.section.ref, choice.why)
            )
            continue
        excerpt = finder.find(alert, classification)  # an external runbook_url
        if excerpt is not None and excerpt.link.url:
            why = "an external runbook URL, not in the library"
            results.append(RuleCoverage(rule, classification.category, excerpt.link.url, why))
            continue
        why = _closest(finder, rule, classification.category, alert)
        results.append(RuleCoverage(rule, classification.category, None, why))
    results.sort(key=lambda r: (r.covered, r.rule.name))
    return CoverageReport(results, _unreached(finder, reached))


def _closest(finder: LibraryFinder, rule: AlertingRule, category: str, alert: Alert) -> str:
    """Why a rule has no section: nothing declares it, and the closest one is not relevant."""
    ranked = finder.library.rank(alert_query(alert, category), category)
    if not ranked:
        return f"nothing declares {rule.name} and no section matches any word of the alert"
    best = ranked[0]
    return (
        f"nothing declares {rule.name}; the closest section, {best.section.ref} "
        f"({best.score:.1f}), is not relevant enough"
    )


def _unreached(finder: LibraryFinder, reached: set[Section]) -> list[Section]:
    """Sections that can be an answer but that no rule reaches, nor any rule a sub-section of."""
    library = finder.library
    covered = reached | {a for s in reached for a in s.ancestors()}
    return [s for s in library.sections() if library.indexed(s) and s not in covered]
