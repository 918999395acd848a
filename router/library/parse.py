"""Parse one markdown runbook into a tree of sections (markdown-it-py tokens, not line regexes)."""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from markdown_it import MarkdownIt
from markdown_it.token import Token

from router.library.anchors import AnchorAllocator
from router.library.declarations import heading_declares, line_declarations, table_declarations
from router.library.frontmatter import FrontMatter, parse_front_matter
from router.library.markdown import inline_lines, link_hrefs, plain_text
from router.library.model import Declaration, RawLink, RunbookFile, Section
from router.library.structure import is_part
from router.yamlfile import ConfigError

INTRO_LIMIT = 500
# The line breaks markdown-it counts (it normalises \r\n and \r to \n).
_SOURCE_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


@dataclass
class _Walk:
    """Where the token walk is: the open sections and the anchors given so far."""

    root: Section
    stack: list[Section]
    ordered: list[Section] = field(default_factory=list)
    anchors: dict[str, Section] = field(default_factory=dict)
    allocator: AnchorAllocator = field(default_factory=AnchorAllocator)
    first_block: str = ""

    @property
    def current(self) -> Section:
        return self.stack[-1]


def parse_runbook(md: MarkdownIt, text: str, path: str, source: Path) -> RunbookFile:
    """Parse ``text`` (the file ``source``, indexed as ``path``) into a :class:`RunbookFile`."""
    tokens = md.parse(text)
    meta, body_start, problems = _front_matter(tokens, source)
    root = Section(
        path=path, anchor="", title="", level=0, start_line=body_start + 1, source=source
    )
    walk = _Walk(root=root, stack=[root])
    for index, token in enumerate(tokens):
        _visit(walk, tokens, index, token)
    lines = _SOURCE_LINE.findall(text)
    _slice_markdown(walk, tokens, lines, body_start)
    top = walk.ordered[0] if walk.first_block == "h1" and _single_h1(root) else root
    root.title = meta.title or (top.title if top is not root else PurePosixPath(path).stem)
    _apply_front_matter(meta, top)
    return RunbookFile(
        path=path,
        source=source,
        root=root,
        top=top,
        meta=meta,
        anchors=walk.anchors,
        problems=problems,
    )


def _front_matter(tokens: list[Token], source: Path) -> tuple[FrontMatter, int, list[ConfigError]]:
    """The front matter and the line the body starts at; a broken one is a problem, and the
    file is still indexed without it."""
    if not (tokens and tokens[0].type == "front_matter" and tokens[0].map):
        return FrontMatter(), 0, []
    try:
        meta = parse_front_matter(tokens[0].content, source, first_line=2)
    except ConfigError as exc:
        return FrontMatter(), tokens[0].map[1], [exc]
    return meta, tokens[0].map[1], []


def _single_h1(root: Section) -> bool:
    return sum(1 for c in root.children if c.level == 1) == 1


def _apply_front_matter(meta: FrontMatter, top: Section) -> None:
    for name in meta.alerts:
        line = meta.alert_lines.get(name, 1)
        top.declarations.append(Declaration(name, top, line, "front matter"))


def _visit(walk: _Walk, tokens: list[Token], index: int, token: Token) -> None:
    if _is_block(token) and not walk.first_block and not _is_comment(token):
        walk.first_block = "h1" if token.tag == "h1" else token.type
    if token.type == "heading_open":
        _open_heading(walk, token, tokens[index + 1])
    elif token.type == "inline" and not _is_section_title(tokens[index - 1]):
        _read_inline(walk.current, token, tokens[index - 1])
        if _opens_row(tokens, index):
            walk.current.row_headers.append(plain_text(token.children or []))
    elif token.type in ("fence", "code_block"):
        walk.current.code.append(token.content)
    elif token.type == "table_open":
        section = walk.current
        for name, line, target in table_declarations(tokens, index):
            section.declarations.append(Declaration(name, section, line, "table", target))


def _is_block(token: Token) -> bool:
    """A top-level block (its opening token) with a line range."""
    return (
        token.level == 0 and token.nesting >= 0 and bool(token.map) and token.type != "front_matter"
    )


def _opens_row(tokens: list[Token], index: int) -> bool:
    """The first cell of a table body row: what the row is about (``Pods stay Pending``)."""
    return (
        index >= 2 and tokens[index - 1].type == "td_open" and tokens[index - 2].type == "tr_open"
    )


def _is_comment(token: Token) -> bool:
    """An HTML comment block (``<!-- … -->``), which a reader never sees."""
    text = token.content.strip()
    return token.type == "html_block" and text.startswith("<!--") and text.endswith("-->")


def _is_section_title(token: Token) -> bool:
    return token.type == "heading_open" and token.level == 0


def _open_heading(walk: _Walk, token: Token, inline: Token) -> None:
    """A heading: a new section when it is at the top level, else just an anchor."""
    children = inline.children or []
    anchor = walk.allocator.allocate(plain_text(children, newline="\n"))
    if token.level > 0 or not token.map:
        walk.anchors.setdefault(anchor, walk.current)
        return
    level = int(token.tag[1])
    while walk.current.level >= level:
        walk.stack.pop()
    parent = walk.current
    section = Section(
        path=parent.path,
        anchor=anchor,
        title=plain_text(children).strip(),
        level=level,
        start_line=token.map[0] + 1,
        source=parent.source,
        parent=parent,
    )
    parent.children.append(section)
    walk.stack.append(section)
    walk.ordered.append(section)
    walk.anchors.setdefault(anchor, section)
    for name, _ in line_declarations(children):  # "## Alert: InstanceDown (critical)"
        section.declarations.append(Declaration(name, section, section.start_line, "heading"))
    if heading_declares(section.title) and not any(map(is_part, section.ancestors())):
        section.declarations.append(
            Declaration(section.title, section, section.start_line, "heading")
        )


def _read_inline(section: Section, inline: Token, opener: Token) -> None:
    """Text, links, declarations and (once) the intro paragraph from one inline token."""
    section.text.append(plain_text(inline.children or []))
    for line, children in inline_lines(inline):
        section.links.extend(RawLink(href, line) for href in link_hrefs(children))
        for name, how in line_declarations(children):
            section.declarations.append(Declaration(name, section, line, how))
    if not section.intro and opener.type == "paragraph_open":
        section.intro = plain_text(inline.children or []).strip()[:INTRO_LIMIT]


def _slice_markdown(walk: _Walk, tokens: list[Token], lines: list[str], body_start: int) -> None:
    """Give every section its source lines, sub-sections included, trailing rules dropped."""
    blocks = [(t.map[0], t.map[1], t.type == "hr") for t in tokens if _is_block(t) and t.map]
    starts = [b[0] for b in blocks]
    ends = _section_ends(walk.ordered, len(lines))
    first = starts[0] if starts else body_start
    walk.root.markdown = "".join(lines[first : _trim(blocks, starts, len(lines))])
    for section in walk.ordered:
        first = section.start_line - 1
        last = max(_trim(blocks, starts, ends[section]), first + 1)
        section.markdown = "".join(lines[first:last])


def _section_ends(ordered: list[Section], total: int) -> dict[Section, int]:
    """The 0-based line where each section stops: the next heading of its level or higher."""
    ends: dict[Section, int] = {}
    open_sections: list[Section] = []
    for section in ordered:
        while open_sections and open_sections[-1].level >= section.level:
            ends[open_sections.pop()] = section.start_line - 1
        open_sections.append(section)
    for section in open_sections:
        ends[section] = total
    return ends


def _trim(blocks: list[tuple[int, int, bool]], starts: list[int], end: int) -> int:
    """The end of the last block before ``end`` that is not a horizontal rule."""
    index = bisect_left(starts, end) - 1
    while index >= 0 and blocks[index][2]:
        index -= 1
    return min(blocks[index][1], end) if index >= 0 else end
