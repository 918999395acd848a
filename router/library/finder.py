"""Picking the runbook excerpt for one alert (implements ``RunbookFinder``)."""

from __future__ import annotations

from dataclasses import dataclass

from router.alerts import Alert
from router.library.library import RunbookLibrary
from router.library.links import is_external
from router.library.model import Section
from router.library.query import AlertQuery, alert_query
from router.library.ranking import Candidate
from router.library.terms import terms
from router.triage import Classification, RunbookExcerpt, RunbookLink

# A candidate is relevant when its heading or declared alert names match the problem
# (MIN_HEADLINE) and the whole section supports it (MIN_RELEVANCE), or when its heading
# names the alert's own workload (NAMED) and the section is about the problem at all.
MIN_HEADLINE = 0.08
MIN_RELEVANCE = 0.3
NAMED = 0.5
MIN_NAMED_RELEVANCE = 0.15
REACH = 0.6  # candidates below this share of the top score are never the answer
SPECIFIC = 0.8  # a sub-section this close to its parent's score is the better answer
TIE = 0.2  # the same heading in two files this close, and no workload to choose: no answer
PICKS_FILE = 0.15  # how much more one file must name the alert's workload to be chosen
# Alerts about a service's health, for which the service's own runbook is the page to open.
SERVICE_CATEGORIES = frozenset({"latency", "error_rate", "db_saturation", "crashloop"})


@dataclass(frozen=True)
class Choice:
    """The section picked for an alert and the one-line reason why."""

    section: Section
    why: str


class LibraryFinder:
    """Finds the runbook section for an alert, most specific evidence first, and returns
    its excerpt as written (the pipeline fills its commands after diagnosing: :mod:`router.placeholders`).

    1. ``classification.runbook_ref`` when it resolves in the library (a link to a
       whole file narrows to that file's best-ranked topic);
    2. the section declaring the alert name;
    3. an external ``runbook_ref`` URL, as a bare link;
    4. the topic that ranks best for the alert, when it is relevant enough and
       clearly ahead of any unrelated runner-up (see :mod:`router.library.ranking`).
    """

    def __init__(self, library: RunbookLibrary) -> None:
        self.library = library

    def find(self, alert: Alert, classification: Classification) -> RunbookExcerpt | None:
        choice = self.choose(alert, classification)
        if choice is not None:
            return self.library.excerpt(choice.section, why=choice.why)
        ref = classification.runbook_ref
        if ref and is_external(ref):
            title = f"Runbook for {alert.alertname}" if alert.alertname else "Runbook"
            return RunbookExcerpt(link=RunbookLink(title=title, url=ref), markdown="")
        return None

    def choose(self, alert: Alert, classification: Classification) -> Choice | None:
        """The section for this alert and why, or None (an external link may still apply)."""
        ref = classification.runbook_ref
        linked = self.library.get(ref) or self.library.from_url(ref) if ref else None
        if linked is not None:
            return self._narrowed(linked, ref or "", alert, classification)
        declared = self.library.declared(alert.alertname) if alert.alertname else None
        if declared is not None:
            return Choice(declared, f"declares {alert.alertname}")
        if ref and is_external(ref):
            return None
        return self._ranked(alert, classification)

    def explain(self, alert: Alert, classification: Classification, top: int = 3) -> list[str]:
        """The top candidates with their scores and reasons, for ``classify --explain``."""
        query = alert_query(alert, classification.category)
        ranked = self.library.rank(query, classification.category)
        lines = []
        for candidate in ranked[:top]:
            lines.append(f"{candidate.score:6.2f}  {candidate.section.ref}")
            lines += [f"        {r}" for r in self.library.explain(candidate, query)]
        return lines or ["no section matches any term of the alert"]

    def _narrowed(
        self, linked: Section, ref: str, alert: Alert, classification: Classification
    ) -> Choice:
        """A link to a whole file narrows to the file's best topic for the alert."""
        if "#" in ref or linked.level > 1 or linked.children == []:
            return Choice(linked, self._link_reason(linked, alert, classification))
        query = alert_query(alert, classification.category)
        ranked = self.library.rank(query, classification.category)
        accepted = [c for c in ranked if c.section.path == linked.path and _relevant(c)]
        origin = _origin(classification)
        if not accepted:
            return Choice(linked, f"{origin} points at {linked.path}")
        best = _most_specific(accepted[0], accepted)
        return Choice(best.section, f"the best topic of {linked.path}, which {origin} points at")

    def _link_reason(self, linked: Section, alert: Alert, classification: Classification) -> str:
        if alert.alertname and self.library.declared(alert.alertname) is linked:
            return f"declares {alert.alertname}"
        return f"{_origin(classification)} points here"

    def _ranked(self, alert: Alert, classification: Classification) -> Choice | None:
        query = alert_query(alert, classification.category)
        ranked = self.library.rank(query, classification.category)
        eligible = [c for c in ranked if not _ruled_out(c)]
        top = eligible[0].score if eligible else 0.0
        accepted = [c for c in eligible if c.score >= REACH * top and _relevant(c)]
        if not accepted:
            return self._service_runbook(query, classification)
        best = _most_specific(accepted[0], accepted)
        rival = _rival(best, accepted)
        if rival is not None and _indistinct(best, rival):
            return None  # the same topic in two files and nothing to tell them apart
        return Choice(best.section, self._why(best, query))

    def _why(self, candidate: Candidate, query: AlertQuery) -> str:
        """One short line: the alert's words the heading matches, and the workload it names."""
        heading, names = self.library.evidence(candidate, query)
        parts = []
        if heading:
            parts.append("its heading matches " + ", ".join(heading[:3]))
        if names:
            parts.append("it names " + ", ".join(names[:2]))
        if not parts:
            parts.append("its text matches the alert")
        return f"ranked best ({candidate.score:.1f}): " + "; ".join(parts)

    def _service_runbook(self, query: AlertQuery, classification: Classification) -> Choice | None:
        """No section fits, but a service-level alert still has its service's runbook."""
        if classification.category not in SERVICE_CATEGORIES:
            return None
        top = self.library.named_file(query)
        if top is None:
            return None
        return Choice(top, f"no section about this problem; the runbook of {top.title or top.path}")


def _origin(classification: Classification) -> str:
    """Who named the runbook: a rule, or the alert's own annotation."""
    return f"rule {classification.rule}" if classification.rule else "the alert's runbook_url"


def _ruled_out(candidate: Candidate) -> bool:
    """About another status family, or named for another component than the alert's."""
    return bool(candidate.contradicted) or (candidate.component_title and candidate.named < NAMED)


def _relevant(candidate: Candidate) -> bool:
    """Relevant enough to be the answer: its heading matches the problem, or names the
    alert's workload, and the section as a whole supports it."""
    if _ruled_out(candidate):
        return False
    if candidate.named >= NAMED and candidate.relevance >= MIN_NAMED_RELEVANCE:
        return True
    return candidate.headline >= MIN_HEADLINE and candidate.relevance >= MIN_RELEVANCE


def _most_specific(best: Candidate, accepted: list[Candidate]) -> Candidate:
    """A sub-section of ``best`` that scores nearly as well or whose heading matches as well.

    ``## Database issues`` → ``### Connection pool exhaustion``, recursively.
    """
    for other in accepted:
        if best.section not in other.section.ancestors():
            continue
        if other.score >= SPECIFIC * best.score or other.headline >= best.headline:
            return _most_specific(other, accepted)
    return best


def _rival(best: Candidate, others: list[Candidate]) -> Candidate | None:
    """The best candidate that is neither ``best``, inside it, nor one of its ancestors."""
    for other in others:
        section = other.section
        if section is best.section:
            continue
        if best.section in section.ancestors() or section in best.section.ancestors():
            continue
        return other
    return None


def _indistinct(best: Candidate, rival: Candidate) -> bool:
    """The same heading in another file, and the alert's workload does not pick one: the
    scores differ only by how each file happens to be written."""
    same = terms(best.section.title) == terms(rival.section.title)
    picked = best.affinity - rival.affinity >= PICKS_FILE
    return same and not picked and best.score - rival.score <= TIE * best.score
