"""Building the library's indexes from parsed files: declarations, categories, cross-links.

Each step walks every section once and fills dicts, so indexing stays linear.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from router.library.categories import guess_category
from router.library.discovery import MARKDOWN_SUFFIXES
from router.library.links import is_external, prefix_match, relative_target, split_ref
from router.library.model import Declaration, RunbookFile, Section
from router.library.ranking import TopicIndex
from router.library.structure import meaningful, topics
from router.yamlfile import ConfigError

FRONT_MATTER_SCORE = 1_000_000


@dataclass
class Resolution:
    """Where a link lands, and what is wrong with it (``problem`` is None when fine)."""

    section: Section | None = None
    problem: str | None = None


@dataclass
class Index:
    """What :class:`RunbookLibrary` answers queries from."""

    files: dict[str, RunbookFile]
    declared: dict[str, Section] = field(default_factory=dict)
    by_category: dict[str, list[Section]] = field(default_factory=dict)
    problems: list[ConfigError] = field(default_factory=list)
    topics: TopicIndex | None = None


def build_index(files: dict[str, RunbookFile], problems: list[ConfigError]) -> Index:
    """Run every indexing step over the parsed files."""
    index = Index(files=files, problems=problems)
    for runbook in files.values():
        _index_declarations(index, runbook)
        _index_categories(index, runbook)
    for runbook in files.values():
        _index_links(index, runbook)
    index.topics = TopicIndex(files.values())
    return index


def resolve_link(files: dict[str, RunbookFile], runbook: RunbookFile, href: str) -> Resolution:
    """The section a link written in ``runbook`` points at (external links resolve to nothing)."""
    if is_external(href) or not href:
        return Resolution()
    path, anchor = split_ref(href)
    target_path = relative_target(runbook.path, path) if path else runbook.path
    target = files.get(target_path)
    if target is None:
        return _outside_library(runbook, path)
    if not anchor:
        return Resolution(target.top)
    if anchor in target.anchors:
        return Resolution(target.anchors[anchor])
    guess = prefix_match(anchor, list(target.anchors))
    if guess is None:
        return Resolution(problem=f"broken link {href!r}: no section #{anchor} in {target.path}")
    return Resolution(
        target.anchors[guess], f"link {href!r} is not a GitHub anchor; did you mean #{guess}?"
    )


def _outside_library(runbook: RunbookFile, path: str) -> Resolution:
    """A link to a file that is not indexed: fine unless it is missing markdown."""
    if not path.lower().endswith(MARKDOWN_SUFFIXES):
        return Resolution()
    if (runbook.source.parent / path).exists():
        return Resolution()
    return Resolution(problem=f"broken link {path!r}: no such runbook")


def _index_declarations(index: Index, runbook: RunbookFile) -> None:
    """Record which section declares which alert name."""
    declarations = sorted(
        (d for s in runbook.sections() for d in s.declarations), key=lambda d: d.line
    )
    for declaration in declarations:
        _declare(index, declaration, _declared_section(index, runbook, declaration))


def _declared_section(index: Index, runbook: RunbookFile, declaration: Declaration) -> Section:
    """A table row's link target when it resolves, else the nearest meaningful section."""
    if declaration.target:
        target = resolve_link(index.files, runbook, declaration.target).section
        if target is not None:
            return target
    return meaningful(declaration.section)


def _declare(index: Index, declaration: Declaration, section: Section) -> None:
    first = index.declared.setdefault(declaration.name, section)
    if first is section:
        if declaration.name not in section.alerts:
            section.alerts.append(declaration.name)
        return
    index.problems.append(
        ConfigError(
            section.source,
            declaration.line,
            f"alert {declaration.name} is already declared by {first.ref}; "
            f"ignoring this {declaration.how} declaration",
        )
    )


def _index_categories(index: Index, runbook: RunbookFile) -> None:
    """Give each topic of the file a category (front matter overrides the scorer)."""
    for section in topics(runbook):
        if section is runbook.top and runbook.meta.category:
            section.category = runbook.meta.category
            section.category_reasons = ["front matter category"]
            section.category_score = FRONT_MATTER_SCORE
        else:
            guess = guess_category(section.title, section.alerts, section.intro)
            section.category, section.category_reasons = guess.category, guess.reasons
            section.category_score = guess.score
        if section.category:
            index.by_category.setdefault(section.category, []).append(section)


def _index_links(index: Index, runbook: RunbookFile) -> None:
    """Resolve each section's own links, then gather related sections bottom-up."""
    own: dict[Section, list[Section]] = {}
    for section in runbook.sections():
        own[section] = []
        for link in section.links:
            resolution = resolve_link(index.files, runbook, link.href)
            if resolution.problem:
                index.problems.append(ConfigError(runbook.source, link.line, resolution.problem))
            if resolution.section is not None:
                own[section].append(resolution.section)
    for section in reversed(list(runbook.sections())):
        gathered = own[section] + [r for c in section.children for r in c.related]
        section.related = _outside(section, gathered)


def _outside(section: Section, targets: list[Section]) -> list[Section]:
    """Targets that are not ``section`` or inside it, without repeats, in order."""
    kept: list[Section] = []
    seen: set[Section] = set()
    for target in targets:
        inside = target is section or section in target.ancestors()
        if not inside and target not in seen:
            seen.add(target)
            kept.append(target)
    return kept
