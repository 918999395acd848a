"""The indexed shape of a runbook: files made of nested sections."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from router.library.frontmatter import FrontMatter
from router.triage import RunbookLink
from router.yamlfile import ConfigError


@dataclass(frozen=True)
class Declaration:
    """An alert name a section says it handles, and where it says so.

    ``target`` is an in-document link found next to the name (a table row
    pointing at another section); it wins over ``section`` when it resolves.
    """

    name: str
    section: Section
    line: int
    how: str
    target: str | None = None


@dataclass(frozen=True)
class RawLink:
    """A link written inside a section's own text."""

    href: str
    line: int


@dataclass(eq=False)
class Section:
    """One heading and everything under it, down to the next heading of its level.

    Level 0 is the whole file (``anchor`` is empty). ``markdown`` is sliced from
    the source by line ranges and includes the sub-sections.
    """

    path: str
    anchor: str
    title: str
    level: int
    start_line: int
    source: Path
    markdown: str = ""
    parent: Section | None = field(default=None, repr=False)
    children: list[Section] = field(default_factory=list, repr=False)
    category: str | None = None
    category_reasons: list[str] = field(default_factory=list, repr=False)
    category_score: int = field(default=0, repr=False)
    alerts: list[str] = field(default_factory=list)
    related: list[Section] = field(default_factory=list, repr=False)
    intro: str = field(default="", repr=False)
    text: list[str] = field(default_factory=list, repr=False)
    code: list[str] = field(default_factory=list, repr=False)
    row_headers: list[str] = field(default_factory=list, repr=False)
    links: list[RawLink] = field(default_factory=list, repr=False)
    declarations: list[Declaration] = field(default_factory=list, repr=False)
    base_url: str | None = field(default=None, repr=False)

    @property
    def ref(self) -> str:
        """``path#anchor``, or ``path`` for a whole file."""
        return f"{self.path}#{self.anchor}" if self.anchor else self.path

    def url(self) -> str:
        """Where a person can read this section: under ``base_url``, else the local file."""
        fragment = f"#{self.anchor}" if self.anchor else ""
        if self.base_url:
            return f"{self.base_url.rstrip('/')}/{self.path}{fragment}"
        return f"{self.source.as_uri()}{fragment}"

    def link(self) -> RunbookLink:
        return RunbookLink(
            path=self.path, anchor=self.anchor or None, title=self.title, url=self.url()
        )

    def walk(self) -> Iterator[Section]:
        """This section and all its descendants, in document order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def ancestors(self) -> Iterator[Section]:
        """Parent, grandparent… up to the file section."""
        node = self.parent
        while node is not None:
            yield node
            node = node.parent


@dataclass(eq=False)
class RunbookFile:
    """One parsed markdown file; ``top`` is its single ``#`` title section, else the file."""

    path: str
    source: Path
    root: Section
    top: Section
    meta: FrontMatter
    anchors: dict[str, Section] = field(default_factory=dict)
    problems: list[ConfigError] = field(default_factory=list)  # e.g. unreadable front matter

    def sections(self) -> Iterator[Section]:
        """The file section, then every heading section in document order."""
        return self.root.walk()
