"""Ranking every topic of the library against one alert, with the reasons for each score.

Each topic is indexed once, at load, as a BM25F document of six fields: its title
(strongest; a file without headings has its first paragraph), the alert names it
declares, the headings of its parts and the first cells of its table rows, its context
(parent headings, the file's title, path and front matter), its body (its own text
and its parts', tables and lists included) and its code blocks (weakest). A second index over the title and
context alone measures *workload affinity*: how well the section names the alert's
service, job or namespace. The score of a topic is::

    relevance(problem terms) + AFFINITY · affinity(workload terms) ± category prior
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np

from router.library.model import RunbookFile, Section
from router.library.query import AlertQuery
from router.library.relevance import Bm25fIndex, FieldWeight
from router.library.structure import GENERIC_TERMS, own_parts, topics
from router.library.technologies import resources, systems
from router.library.terms import status_family, terms, word_terms

PROBLEM_FIELDS = {
    "title": FieldWeight(4.0, b=0.3),
    "declared": FieldWeight(2.5, b=0.5),
    "subtitles": FieldWeight(1.5, b=0.2),
    "context": FieldWeight(1.0, b=0.5),
    "body": FieldWeight(1.0, b=0.75),
    "code": FieldWeight(0.25, b=0.75),
}
HEADLINE_FIELDS = {
    "title": FieldWeight(1.0, b=0.3),
    "declared": FieldWeight(0.7, b=0.5),
    "subtitles": FieldWeight(0.8, b=0.2),
}
WORKLOAD_FIELDS = {
    "title": FieldWeight(3.0, b=0.3),
    "context": FieldWeight(2.0, b=0.3),
    "body": FieldWeight(0.2, b=0.75),
}
AFFINITY = 1.0
NAMED_WEIGHT = 0.5  # a heading that is the workload's own name ("CoreDNS", "thanos-store")
SHORTLIST = 40  # topics examined in detail per alert, of those with any relevance
CATEGORY_MATCH = 0.25
CATEGORY_CONFLICT = -0.25
# A heading that is a component's name (``thanos-receive``, ``payments_api``).
COMPONENT_NAME = re.compile(r"[a-z0-9]+(?:[-_.][a-z0-9]+)+")
BUILTIN = frozenset({"latency", "error_rate", "db_saturation", "crashloop"})


@dataclass
class Candidate:
    """One topic's score for an alert, split into its parts, with readable reasons."""

    section: Section
    relevance: float = 0.0
    headline: float = 0.0
    affinity: float = 0.0
    named: float = 0.0
    prior: float = 0.0
    contradicted: str = ""
    component_title: bool = False
    reasons: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return self.relevance + AFFINITY * self.affinity + NAMED_WEIGHT * self.named + self.prior


class TopicIndex:
    """Every topic of a set of runbook files, indexed for ranking."""

    def __init__(self, runbooks: Iterable[RunbookFile]) -> None:
        files = list(runbooks)
        self.topics: list[Section] = [t for f in files for t in topics(f)]
        documents = [_document(t, f) for f in files for t in topics(f)]
        self._problem = Bm25fIndex(documents, PROBLEM_FIELDS)
        self._headline = Bm25fIndex(documents, HEADLINE_FIELDS)
        self._workload = Bm25fIndex(documents, WORKLOAD_FIELDS, idf_floor=0.5)
        self._title_words = [_specific_words(t.title) for t in self.topics]
        self._subjects = [_subject(d) for d in documents]
        self._component_titles = [
            t.level > 0 and bool(COMPONENT_NAME.fullmatch(t.title)) for t in self.topics
        ]
        self._file_names = [(f.top, _file_words(f)) for f in files]
        self._categories = np.array(
            [t.category if t.category in BUILTIN else "" for t in self.topics]
        )
        self._position = {id(t): i for i, t in enumerate(self.topics)}
        self._documents = documents

    def rank(self, query: AlertQuery, category: str | None) -> list[Candidate]:
        """The best topics for the alert, best first (document order breaks ties).

        Every topic is scored at once (array arithmetic over posting lists); only the
        :data:`SHORTLIST` best become :class:`Candidate` objects with their details.
        """
        unit = self._problem.unit
        relevance = self._problem.scores(query.problem) / unit
        affinity = self._workload.scores(query.workload) / unit
        prior = self._priors(category)
        total = relevance + AFFINITY * affinity + prior  # the shortlist; named is added below
        matched = np.flatnonzero(relevance > 0)
        if matched.size > SHORTLIST:
            matched = matched[np.argpartition(-total[matched], SHORTLIST)[:SHORTLIST]]
        headline = self._headline.scores(query.condition) / unit
        ranked = [
            self._candidate(int(doc), relevance, affinity, headline, query, category)
            for doc in matched
        ]
        ranked.sort(key=lambda c: (-c.score, self._position[id(c.section)]))
        return ranked

    def evidence(self, candidate: Candidate, query: AlertQuery) -> tuple[list[str], list[str]]:
        """The alert's words its heading matches, strongest first, and the workload it names."""
        doc = self._position[id(candidate.section)]
        heading = sorted(
            (t for t in query.condition if self._headline.contribution(doc, t) > 0),
            key=lambda t: -query.condition[t] * self._headline.contribution(doc, t),
        )
        names = [t for t in query.workload if self._workload.contribution(doc, t) > 0]
        return (
            list(dict.fromkeys(query.word(t) for t in heading)),
            list(dict.fromkeys(query.word(t) for t in names)),
        )

    def indexed(self, section: Section) -> dict[str, list[str]]:
        """The distinct terms a topic is indexed under, per field (empty for non-topics)."""
        doc = self._position.get(id(section))
        if doc is None:
            return {}
        return {name: list(dict.fromkeys(terms)) for name, terms in self._documents[doc].items()}

    def named_file(self, query: AlertQuery) -> Section | None:
        """The top section of the one file named for the alert's workload, if exactly one is."""
        named = [top for top, words in self._file_names if _coverage(words, query.workload) >= 0.5]
        return named[0] if len(named) == 1 else None

    def explain(self, candidate: Candidate, query: AlertQuery, limit: int = 6) -> list[str]:
        """The strongest matched terms of a candidate, as ``field 'term' (source) +x.xx``."""
        doc = self._position[id(candidate.section)]
        parts = []
        for term, weight in query.problem.items():
            value = weight * self._problem.contribution(doc, term) / self._problem.unit
            if value > 0:
                where = "/".join(self._problem.fields_matching(doc, term))
                parts.append((value, f"{where} '{term}' ({query.sources[term]}) +{value:.2f}"))
        for term in query.workload:
            value = AFFINITY * self._workload.contribution(doc, term) / self._problem.unit
            if value > 0:
                where = "/".join(self._workload.fields_matching(doc, term))
                parts.append((value, f"workload {where} '{term}' +{value:.2f}"))
        parts.sort(key=lambda p: -p[0])
        return [text for _, text in parts[:limit]] + candidate.reasons

    def _priors(self, category: str | None) -> np.ndarray:
        """The category prior of every topic: a bonus for the alert's, a malus for another."""
        if category not in BUILTIN:
            return np.zeros(len(self.topics))
        same = self._categories == category
        other = (self._categories != "") & ~same
        return same * CATEGORY_MATCH + other * CATEGORY_CONFLICT

    def _candidate(
        self,
        doc: int,
        relevance: np.ndarray,
        affinity: np.ndarray,
        headline: np.ndarray,
        query: AlertQuery,
        category: str | None,
    ) -> Candidate:
        section = self.topics[doc]
        candidate = Candidate(
            section,
            relevance=float(relevance[doc]),
            headline=float(headline[doc]),
            affinity=float(affinity[doc]),
            named=_coverage(self._title_words[doc], query.workload),
            contradicted=_contradiction(self._subjects[doc], query),
            component_title=self._component_titles[doc],
        )
        if category in BUILTIN and section.category == category:
            candidate.prior = CATEGORY_MATCH
            candidate.reasons.append(f"category {category} {CATEGORY_MATCH:+.2f}")
        elif category in BUILTIN and section.category in BUILTIN:
            candidate.prior = CATEGORY_CONFLICT
            candidate.reasons.append(
                f"section is about {section.category}, not {category} {CATEGORY_CONFLICT:+.2f}"
            )
        return candidate


def _specific_words(title: str) -> list[tuple[str, ...]]:
    return [w for w in word_terms(title) if not set(w) <= GENERIC_TERMS]


def _coverage(words: list[tuple[str, ...]], workload: dict[str, float]) -> float:
    """The share of a title's specific words that name the alert's workload."""
    if not words:
        return 0.0
    return sum(1 for w in words if any(t in workload for t in w)) / len(words)


def _file_words(runbook: RunbookFile) -> list[tuple[str, ...]]:
    """What names a file: its title, its file name and its front matter's service."""
    texts = [runbook.root.title, PurePosixPath(runbook.path).stem, *runbook.meta.service]
    return [w for text in texts for w in _specific_words(text.replace("_", " "))]


@dataclass(frozen=True)
class Subject:
    """What a section's headings are about: status families (5xx), systems (Redis) and
    resources (memory)."""

    families: frozenset[str]
    systems: frozenset[str]
    resources: frozenset[str]


def _subject(document: dict[str, list[str]]) -> Subject:
    headline = document["title"] + document["declared"]
    return Subject(
        families=frozenset(t for t in headline if status_family(t)),
        systems=systems(headline + document["context"]),
        resources=resources(headline),
    )


def _contradiction(section: Subject, query: AlertQuery) -> str:
    """Why the section is about something else: another status family, another system."""
    for kind, theirs, ours in (
        ("status", section.families, query.families),
        ("system", section.systems, query.systems),
        ("resource", section.resources, query.resources),
    ):
        if theirs and ours and not theirs & ours:
            return f"the {kind} is {'/'.join(sorted(theirs))}, the alert's {'/'.join(sorted(ours))}"
    return ""


def _document(topic: Section, runbook: RunbookFile) -> dict[str, list[str]]:
    """The six fields of one topic."""
    mine = list(own_parts(topic))
    declared = {d.name for s in mine for d in s.declarations} | set(topic.alerts)
    untitled = topic.level == 0 and not runbook.meta.title  # named only by its file name
    title = f"{topic.title} {topic.intro}" if untitled else topic.title
    return {
        "title": terms(title),
        "declared": [t for name in sorted(declared) for t in terms(name)],
        "context": _context(topic, runbook),
        "subtitles": [t for s in mine[1:] for t in terms(s.title)]
        + [t for s in mine for row in s.row_headers for t in terms(row)],
        "body": [t for s in mine for text in s.text for t in terms(text)],
        "code": [t for s in mine for block in s.code for t in terms(block)],
    }


def _context(topic: Section, runbook: RunbookFile) -> list[str]:
    meta = runbook.meta
    words = [a.title for a in topic.ancestors() if a.level > 0]
    words += [runbook.root.title, str(PurePosixPath(runbook.path).with_suffix(""))]
    words += [meta.title or "", meta.description or "", *meta.service, *meta.tags]
    words += [meta.team or "", meta.component or ""]
    return [t for text in words for t in terms(text.replace("/", " "))]
