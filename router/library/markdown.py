"""The markdown-it parser the library uses, and helpers over its inline tokens."""

from __future__ import annotations

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.container import container_plugin
from mdit_py_plugins.front_matter import front_matter_plugin

ADMONITIONS = ("info", "warning", "note", "tip", "danger", "caution", "important")

Line = tuple[int, list[Token]]


def build_parser() -> MarkdownIt:
    """CommonMark with tables, strikethrough, front matter and ``:::`` admonitions."""
    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    md.use(front_matter_plugin)
    for name in ADMONITIONS:
        md.use(container_plugin, name)
    return md


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
