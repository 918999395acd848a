"""Markdown (CommonMark + tables) → Slack ``mrkdwn``, by walking markdown-it's syntax tree.

Slack's dialect differs from markdown: ``*bold*``, ``_italic_``, ``~strike~``,
``<url|text>`` links, no headings and no tables. Headings become bold lines,
tables become aligned monospace text inside a code block, lists keep their bullets,
numbers and nesting, admonitions (``:::warning``) become a quote headed by their kind,
and ``&``, ``<`` and ``>`` are escaped everywhere. The parser is the library's
(``router.markdown``), so both read a runbook alike.

:func:`blocks` returns the top-level blocks one by one, so a long document can be
split between messages at block boundaries; :func:`to_mrkdwn` joins them;
:class:`Conversions` remembers them per text.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from markdown_it.token import Token
from markdown_it.tree import SyntaxTreeNode

from router.markdown import markdown_parser

Kind = Literal["heading", "paragraph", "code", "list", "table", "quote", "rule"]

_MD = markdown_parser()
_CONTAINER = "container_"
_BULLETS = ("•", "◦", "▪")
_INDENT = "    "
_LINK_SCHEMES = ("http://", "https://", "mailto:")


@dataclass(frozen=True)
class Block:
    """One top-level block of converted text; ``code`` blocks are fenced with three backticks."""

    kind: Kind
    text: str


class Mrkdwn(str):
    """Text that already is mrkdwn (its data escaped): templates interpolate it as it is."""


def escape(text: str) -> str:
    """Escape the three characters Slack treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(markdown: str) -> str:
    """The whole document as mrkdwn, blocks separated by a blank line."""
    return "\n\n".join(b.text for b in blocks(markdown))


def blocks(markdown: str) -> list[Block]:
    """The document's top-level blocks, each converted to mrkdwn."""
    return list(_converted(_MD.parse(markdown)))


def _converted(tokens: list[Token]) -> tuple[Block, ...]:
    out = [_block(node) for node in SyntaxTreeNode(tokens).children]
    return tuple(b for b in out if b.text.strip())


class Conversions:
    """:func:`blocks`, remembered: runbook sections repeat from alert to alert.

    A section whose commands were filled from one alert's labels is converted as its
    *template* (a marker where each value went: the same text for every alert), and the
    values are put in afterwards. That gives what converting the filled text gives when
    every marker lands in code, whose content markdown takes as it is (and a filled value
    is a plain token, which escaping leaves alone); otherwise the filled text is converted.
    """

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._done: OrderedDict[str, tuple[tuple[Block, ...], str]] = OrderedDict()
        # The last answer: one alert's message and thread replies ask for its section
        # several times in a row.
        self._last: tuple[tuple[str, str, tuple[tuple[str, str], ...]], tuple[Block, ...]] | None
        self._last = None

    def blocks(
        self, markdown: str, template: str = "", marks: Mapping[str, str] | None = None
    ) -> list[Block]:
        """The blocks of ``markdown``, which is ``template`` with its ``marks`` replaced."""
        marks = marks or {}
        key = (markdown, template, tuple(marks.items()))
        if self._last is not None and self._last[0] == key:
            return list(self._last[1])
        found = self._blocks(markdown, template, marks)
        self._last = key, found
        return list(found)

    def _blocks(self, markdown: str, template: str, marks: Mapping[str, str]) -> tuple[Block, ...]:
        if template:
            converted, in_code = self._converted(template)
            if all(template.count(mark) == in_code.count(mark) for mark in marks):
                return tuple(Block(b.kind, _unmarked(b.text, marks)) for b in converted)
        return self._converted(markdown)[0]

    def _converted(self, markdown: str) -> tuple[tuple[Block, ...], str]:
        """The blocks, and the content of every code span and block (taken as written)."""
        done = self._done.get(markdown)
        if done is not None:
            self._done.move_to_end(markdown)
            return done
        tokens = _MD.parse(markdown)
        done = _converted(tokens), "\0".join(_code(tokens))
        self._done[markdown] = done
        if len(self._done) > self.size:
            self._done.popitem(last=False)
        return done


def _code(tokens: list[Token]) -> list[str]:
    out = []
    for token in tokens:
        if token.type in ("fence", "code_block", "code_inline"):
            out.append(token.content)
        out += _code(token.children or [])
    return out


def _unmarked(text: str, marks: Mapping[str, str]) -> str:
    for mark, value in marks.items():
        text = text.replace(mark, value)
    return text


def _block(node: SyntaxTreeNode) -> Block:
    kind = node.type
    if kind == "heading":
        return Block("heading", f"*{_inline(node, plain_bold=True)}*")
    if kind in ("fence", "code_block"):
        return Block("code", fence(node.content))
    if kind in ("bullet_list", "ordered_list"):
        return Block("list", "\n".join(_list(node, 0)))
    if kind == "table":
        return Block("table", fence(_table(node)))
    if kind == "blockquote":
        return _quote([_block(child).text for child in node.children])
    if kind.startswith(_CONTAINER):
        return _quote([_admonition_head(node), *(_block(child).text for child in node.children)])
    if kind == "hr":
        return Block("rule", "──────────")
    if kind == "html_block":
        return Block("paragraph", escape(node.content.strip()))
    return Block("paragraph", _inline(node))


def _quote(parts: list[str]) -> Block:
    inner = "\n\n".join(part for part in parts if part)
    return Block("quote", "\n".join(f"> {line}" if line else ">" for line in inner.split("\n")))


def _admonition_head(node: SyntaxTreeNode) -> str:
    """``:::warning Disk space`` → ``*Warning: Disk space*``."""
    name = node.type.removeprefix(_CONTAINER)
    title = node.info.strip().removeprefix(name).strip()
    return f"*{name.capitalize()}{': ' + escape(title) if title else ''}*"


def fence(code: str) -> str:
    """A code block: escaped, fenced on lines of their own."""
    body = escape(code.rstrip("\n"))
    return f"```\n{body}\n```"


def _list(node: SyntaxTreeNode, depth: int) -> list[str]:
    ordered = node.type == "ordered_list"
    number = int(node.attrs.get("start", 1) or 1) if ordered else 0
    lines: list[str] = []
    for index, item in enumerate(node.children):
        marker = f"{number + index}." if ordered else _BULLETS[depth % len(_BULLETS)]
        lines.extend(_item(item, marker, depth))
    return lines


def _item(item: SyntaxTreeNode, marker: str, depth: int) -> list[str]:
    pad = _INDENT * depth
    lines: list[str] = []
    for child in item.children:
        if child.type in ("bullet_list", "ordered_list"):
            lines.extend(_list(child, depth + 1))
            continue
        text = _block(child).text
        for line in text.split("\n"):
            prefix = f"{pad}{marker} " if not lines else f"{pad}{' ' * (len(marker) + 1)}"
            lines.append(prefix + line)
    return lines or [f"{pad}{marker}"]


def _table(node: SyntaxTreeNode) -> str:
    rows = [
        [_inline(cell, plain=True) for cell in row.children]
        for section in node.children
        for row in section.children
    ]
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    sizes = [max(len(r[i]) for r in rows) for i in range(width)]
    lines = [" | ".join(cell.ljust(sizes[i]) for i, cell in enumerate(r)).rstrip() for r in rows]
    lines.insert(1, "-+-".join("-" * s for s in sizes))
    return "\n".join(lines)


def _inline(node: SyntaxTreeNode, *, plain: bool = False, plain_bold: bool = False) -> str:
    """Inline content of a block; ``plain`` drops all formatting (for table cells)."""
    return "".join(_span(child, plain, plain_bold) for child in _inline_children(node))


def _inline_children(node: SyntaxTreeNode) -> list[SyntaxTreeNode]:
    if node.type == "inline":
        return node.children
    out: list[SyntaxTreeNode] = []
    for child in node.children:
        out.extend(_inline_children(child) if child.type != "text" else [child])
    return out


def _span(node: SyntaxTreeNode, plain: bool, plain_bold: bool) -> str:
    kind = node.type
    if kind == "text":
        return node.content if plain else escape(node.content)
    if kind == "softbreak":
        return " "
    if kind == "hardbreak":
        return " " if plain else "\n"
    if kind == "code_inline":
        return node.content if plain else f"`{escape(node.content)}`"
    if kind == "html_inline":
        return node.content if plain else escape(node.content)
    inner = "".join(_span(c, plain, plain_bold) for c in node.children)
    if plain:
        return inner
    if kind == "strong":
        return inner if plain_bold else f"*{inner}*"
    if kind == "em":
        return f"_{inner}_"
    if kind == "s":
        return f"~{inner}~"
    if kind in ("link", "image"):
        return _link(str(node.attrs.get("href") or node.attrs.get("src") or ""), inner, node)
    return inner


def _link(url: str, text: str, node: SyntaxTreeNode) -> str:
    if node.type == "image":
        text = escape(node.content or "") or text
    if not url.startswith(_LINK_SCHEMES):
        return text  # a relative link means nothing in Slack
    label = text.replace("|", "¦") or escape(url)
    target = url.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E").replace("&", "&amp;")
    return f"<{target}|{label}>"
