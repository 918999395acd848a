"""The runbook library: markdown runbooks indexed for the pipeline (implements ``RunbookIndex``)."""

from __future__ import annotations

import re
from pathlib import Path

from router.library.discovery import discover, read_text
from router.library.indexing import Index, build_index
from router.library.links import normalize_path, path_suffixes, prefix_match, split_ref, url_path
from router.library.markdown import build_parser
from router.library.model import RunbookFile, Section
from router.library.parse import parse_runbook
from router.library.query import AlertQuery
from router.library.ranking import Candidate
from router.triage import RunbookExcerpt
from router.yamlfile import ConfigError

_NON_WORD = re.compile(r"[^\w]+")


class RunbookLibrary:
    """Every section of the configured runbooks, with what they declare and link to."""

    def __init__(self, index: Index) -> None:
        self._index = index
        self._sections = [s for f in index.files.values() for s in f.sections()]

    @classmethod
    def load(cls, paths: list[Path], base_url: str | None = None) -> RunbookLibrary:
        """Parse and index the runbooks under ``paths``.

        A file that cannot be read (invalid front matter, say) is left out and reported in
        :attr:`problems` with the others; a path that does not exist raises :class:`ConfigError`.

        Files are indexed by their path relative to the folder they were found in;
        with ``base_url`` set, links point at ``base_url/path#anchor``.
        """
        md = build_parser()
        files: dict[str, RunbookFile] = {}
        problems: list[ConfigError] = []
        for found in discover(paths):
            if found.path in files:
                problems.append(_duplicate_file(found.source, files[found.path]))
                continue
            try:
                text = read_text(found.source)
                runbook = parse_runbook(md, text, found.path, found.source)
            except ConfigError as exc:  # one broken file must not hide the others
                problems.append(exc)
                continue
            problems.extend(runbook.problems)
            for section in runbook.sections():
                section.base_url = base_url
            files[found.path] = runbook
        return cls(build_index(files, problems))

    @property
    def problems(self) -> list[ConfigError]:
        """Duplicate declarations and broken cross-links, for ``check``."""
        return list(self._index.problems)

    def files(self) -> list[RunbookFile]:
        return list(self._index.files.values())

    def sections(self) -> list[Section]:
        """All sections in file order; each file's level-0 section comes first."""
        return list(self._sections)

    def declared(self, alertname: str) -> Section | None:
        return self._index.declared.get(alertname)

    def declarations(self) -> dict[str, Section]:
        """Every declared alert name and the section it belongs to."""
        return dict(self._index.declared)

    def get(self, ref: str) -> Section | None:
        """The section ``path#anchor`` (exact anchor) or the file section ``path``."""
        path, anchor = split_ref(ref)
        runbook = self._index.files.get(normalize_path(path))
        if runbook is None:
            return None
        return runbook.anchors.get(anchor) if anchor else runbook.root

    def from_url(self, url: str) -> Section | None:
        """The section a ``runbook_url`` points at: file matched by path suffix, then anchor.

        Without an anchor it is the file's top section (its single ``#`` title, else the file).
        An anchor that only abbreviates a heading's (``#1-latency-breach`` for
        ``#1-latency-breach-p95--800ms``) still matches the first such section.
        """
        path, anchor = url_path(url)
        runbook = next(
            (self._index.files[p] for p in path_suffixes(path) if p in self._index.files), None
        )
        if runbook is None:
            return None
        if not anchor:
            return runbook.top
        anchor = anchor if anchor in runbook.anchors else anchor.lower()
        found = runbook.anchors.get(anchor)
        if found is None and (guess := prefix_match(anchor, list(runbook.anchors))):
            found = runbook.anchors[guess]
        return found

    def best_for_category(self, category: str) -> Section | None:
        """The runbook section that scores highest for ``category`` (first one on ties)."""
        candidates = self._index.by_category.get(category, [])
        return max(candidates, key=lambda s: s.category_score, default=None)

    def rank(self, query: AlertQuery, category: str | None) -> list[Candidate]:
        """Every topic that matches the query, best first."""
        assert self._index.topics is not None
        return self._index.topics.rank(query, category)

    def evidence(self, candidate: Candidate, query: AlertQuery) -> tuple[list[str], list[str]]:
        """The alert's words a candidate's heading matches, and the workload it names."""
        assert self._index.topics is not None
        return self._index.topics.evidence(candidate, query)

    def indexed(self, section: Section) -> dict[str, list[str]]:
        """What a section is indexed under, per field; empty when it is never an answer."""
        assert self._index.topics is not None
        return self._index.topics.indexed(section)

    def named_file(self, query: AlertQuery) -> Section | None:
        """The top section of the one runbook file named for the alert's workload."""
        assert self._index.topics is not None
        return self._index.topics.named_file(query)

    def explain(self, candidate: Candidate, query: AlertQuery) -> list[str]:
        """Why a candidate scored what it did."""
        assert self._index.topics is not None
        return self._index.topics.explain(candidate, query)

    def excerpt(self, section: Section, why: str = "") -> RunbookExcerpt:
        """The section's markdown, links to its sub-sections and to the sections it links to."""
        return RunbookExcerpt(
            link=section.link(),
            markdown=section.markdown,
            subsections=[c.link() for c in section.children],
            related=[r.link() for r in section.related],
            why=why,
        )

    def find_subsection(self, section: Section, words: list[str]) -> Section | None:
        """The first section whose heading contains all ``words`` (case-insensitive).

        Looks at ``section`` and its descendants, then at its related sections
        and theirs, in document order.
        """
        wanted = [_heading_words(w) for w in words if w.strip()]
        if not wanted:
            return None
        for root in [section, *section.related]:
            for candidate in root.walk():
                title = _heading_words(candidate.title)
                if all(w in title for w in wanted):
                    return candidate
        return None


def _heading_words(text: str) -> str:
    """Lowercased words padded with spaces, so ``" oomkilled "`` matches whole words."""
    return f" {_NON_WORD.sub(' ', text.lower()).strip()} "


def _duplicate_file(source: Path, first: RunbookFile) -> ConfigError:
    return ConfigError(
        source, None, f"{first.path} is already indexed from {first.source}; ignoring this copy"
    )
