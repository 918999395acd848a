"""Alertmanager label matchers: ``name op value``, alone or as a ``{...}`` list.

Semantics follow Alertmanager: the operators are ``=``, ``!=``, ``=~`` and ``!~``;
regexes are fully anchored (``^(?:re)$``); a missing label is the empty string, so
``label=""`` matches an absent label and ``label!=""`` requires it. Values may be
quoted (escapes ``\\"``, ``\\\\`` and ``\\n``; any other backslash stays literal, as in
Alertmanager) or unquoted. Label names are ``[a-zA-Z_][a-zA-Z0-9_]*`` or quoted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Operator = Literal["=", "!=", "=~", "!~"]
OPERATORS: tuple[Operator, ...] = ("=~", "!~", "!=", "=")  # longest first

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_UNQUOTED_STOP = set(' \t\r\n,{}"=!~')
_LEADING_FLAGS = re.compile(r"\(\?([imsU]+)\)")
_ESCAPES = {"n": "\n", '"': '"', "\\": "\\"}


class MatcherError(ValueError):
    """A matcher that cannot be parsed; ``column`` is 1-based within ``text``."""

    def __init__(self, text: str, column: int, message: str) -> None:
        self.text = text
        self.column = column
        self.message = message
        super().__init__(f"{message} at column {column} of {text!r}")


@dataclass(frozen=True)
class Matcher:
    """One label matcher; build with :func:`parse_matcher` or directly."""

    name: str
    op: Operator
    value: str
    _regex: re.Pattern[str] | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            object.__setattr__(self, "_regex", compile_anchored(self.value))

    def matches_value(self, value: str) -> bool:
        """Whether a label value (``""`` for a missing label) satisfies this matcher."""
        if self._regex is not None:
            found = self._regex.match(value) is not None
            return found if self.op == "=~" else not found
        return (value == self.value) if self.op == "=" else (value != self.value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self.matches_value(labels.get(self.name, ""))

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{escaped}"'


def compile_anchored(pattern: str) -> re.Pattern[str]:
    """Compile a regex anchored at both ends, as Alertmanager and Prometheus do.

    A leading Go flag group such as ``(?i)`` becomes a scoped group, which Python needs.
    """
    flags = _LEADING_FLAGS.match(pattern)
    if flags:
        scoped = flags.group(1).replace("U", "")
        body = pattern[flags.end() :]
        return re.compile(f"^(?{scoped}:{body})$" if scoped else f"^(?:{body})$")
    return re.compile(f"^(?:{pattern})$")


def matches_all(matchers: list[Matcher] | tuple[Matcher, ...], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def parse_matcher(text: str) -> Matcher:
    """Parse exactly one matcher such as ``severity =~ "warning|critical"``."""
    scanner = _Scanner(text)
    matcher = scanner.matcher()
    scanner.skip_space()
    if not scanner.at_end():
        scanner.fail(f"unexpected {scanner.peek()!r} after the matcher value")
    return matcher


def parse_matchers(text: str) -> list[Matcher]:
    """Parse ``{a="b", c=~"d"}`` (braces optional) into a list of matchers."""
    scanner = _Scanner(text)
    scanner.skip_space()
    braced = scanner.accept("{")
    matchers: list[Matcher] = []
    while True:
        scanner.skip_space()
        if scanner.at_end() or (braced and scanner.peek() == "}"):
            break
        matchers.append(scanner.matcher(in_list=True))
        scanner.skip_space()
        if not scanner.accept(","):
            break
    scanner.skip_space()
    if braced and not scanner.accept("}"):
        scanner.fail("expected ',' or '}'")
    scanner.skip_space()
    if not scanner.at_end():
        scanner.fail("expected ',' between matchers" if not braced else "unexpected text after '}'")
    return matchers


class _Scanner:
    """A cursor over the matcher text that reports errors with a column."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str, pos: int | None = None) -> None:
        raise MatcherError(self.text, (self.pos if pos is None else pos) + 1, message)

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def accept(self, literal: str) -> bool:
        if self.text.startswith(literal, self.pos):
            self.pos += len(literal)
            return True
        return False

    def skip_space(self) -> None:
        while self.peek() and self.peek().isspace():
            self.pos += 1

    def matcher(self, in_list: bool = False) -> Matcher:
        self.skip_space()
        name = self.label_name()
        self.skip_space()
        op = self.operator()
        self.skip_space()
        start = self.pos
        value = self.quoted() if self.peek() == '"' else self.unquoted(in_list)
        try:
            return Matcher(name, op, value)
        except re.error as exc:
            self.fail(f"invalid regular expression {value!r}: {exc.msg}", start)
        raise AssertionError("unreachable")

    def label_name(self) -> str:
        if self.peek() == '"':
            start = self.pos
            name = self.quoted()
            if not name:
                self.fail("empty label name", start)
            return name
        found = _LABEL_NAME.match(self.text, self.pos)
        if found is None:
            what = f"{self.peek()!r}" if self.peek() else "end of input"
            self.fail(f"expected a label name, found {what}")
        assert found is not None
        self.pos = found.end()
        return found.group()

    def operator(self) -> Operator:
        for op in OPERATORS:
            if self.accept(op):
                return op
        rest = self.text[self.pos : self.pos + 2] or "end of input"
        self.fail(f"expected an operator (=, !=, =~, !~), found {rest!r}")
        raise AssertionError("unreachable")

    def quoted(self) -> str:
        start = self.pos
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == '"':
                self.pos += 1
                return "".join(out)
            if char == "\\" and self.pos + 1 < len(self.text):
                nxt = self.text[self.pos + 1]
                out.append(_ESCAPES.get(nxt, "\\" + nxt))
                self.pos += 2
                continue
            out.append(char)
            self.pos += 1
        self.fail("unterminated quoted string", start)
        raise AssertionError("unreachable")

    def unquoted(self, in_list: bool) -> str:
        start = self.pos
        stops = _UNQUOTED_STOP if in_list else _UNQUOTED_STOP - set(" \t,{}")
        while self.pos < len(self.text) and self.text[self.pos] not in stops:
            self.pos += 1
        if self.peek() == '"':
            self.fail("unexpected double quote in an unquoted value")
        return self.text[start : self.pos].strip()
