"""The parser the library uses (``router.markdown``), and helpers over its inline tokens."""

from __future__ import annotations

from markdown_it import MarkdownIt
from markdown_it.token import Token

from router.markdown import markdown_parser

Line = tuple[int, list[Token]]


def build_parser() -> MarkdownIt:
    """The shared parser (``router.markdown``), with front matter: the library reads files."""
    return markdown_parser(front_matter=True)


def plain_text(children: list[Token], newline: str = " ") -> str:
    """The text a reader sees: markup gone, code spans and link texts kept."""
    parts: list[str] = []
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(newline)
    return "".join(parts)


def inline_lines(inline: Token) -> list[Line]:
    """An inline token's children split at line breaks, each with its 1-based line."""
    line = inline.map[0] + 1 if inline.map else 0
    lines: list[Line] = []
    current: list[Token] = []
    for child in inline.children or []:
        if child.type in ("softbreak", "hardbreak"):
            lines.append((line, current))
            current = []
            line += 1
        else:
            current.append(child)
    lines.append((line, current))
    return lines


def link_hrefs(children: list[Token]) -> list[str]:
    """The targets of the links among these inline tokens."""
    return [str(c.attrs.get("href", "")) for c in children if c.type == "link_open"]
