"""The PromQL tokenizer: numbers, durations, strings, identifiers, operators."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

TokenKind = Literal["number", "duration", "string", "ident", "op", "eof"]

KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"bool", "offset", "atan2"}
)

_DURATION = re.compile(r"(?:[0-9]+(?:ms|s|m|h|d|w|y))+")
_NUMBER = re.compile(
    r"0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|(?i:inf|nan)(?![\w:])"
)
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_OPERATORS = (
    "==", "!=", ">=", "<=", "=~", "!~",
    "+", "-", "*", "/", "%", "^", ">", "<", "=",
    "(", ")", "{", "}", "[", "]", ",", ":", "@",
)  # fmt: skip
_STRING_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "`": "`"}


class PromQLError(ValueError):
    """A tokenizer or parser error; ``column`` is 1-based."""

    def __init__(self, column: int, message: str) -> None:
        self.column = column
        self.message = message
        super().__init__(f"{message} at column {column}")


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str
    pos: int
    value: str = ""  # decoded string literal

    def is_op(self, *ops: str) -> bool:
        return self.kind == "op" and self.text in ops

    def is_word(self, *words: str) -> bool:
        return self.kind == "ident" and self.text.lower() in words


def tokenize(text: str, lenient: bool = False) -> list[Token]:
    """Split an expression into tokens, ending with an ``eof`` token.

    ``lenient`` skips characters that start no token instead of raising.
    """
    tokens: list[Token] = []
    pos = 0
    in_range = False  # inside [...], where ':' separates range and step
    while pos < len(text):
        char = text[pos]
        if char.isspace():
            pos += 1
        elif char == "#":
            end = text.find("\n", pos)
            pos = len(text) if end < 0 else end
        else:
            try:
                token = _string(text, pos) if char in "\"'`" else _word_or_op(text, pos, in_range)
            except PromQLError:
                if not lenient:
                    raise
                pos += 1
                continue
            in_range = token.is_op("[") or (in_range and not token.is_op("]"))
            tokens.append(token)
            pos += len(token.text)
    tokens.append(Token("eof", "", len(text)))
    return tokens


def _word_or_op(text: str, pos: int, in_range: bool) -> Token:
    kinds = (("duration", _DURATION), ("number", _NUMBER), ("ident", _IDENT))
    for kind, pattern in kinds[:2] if in_range else kinds:
        found = pattern.match(text, pos)
        if found and not (kind == "duration" and _continues_word(text, found.end())):
            return Token(kind, found.group(), pos)  # type: ignore[arg-type]
    for op in _OPERATORS:
        if text.startswith(op, pos):
            return Token("op", op, pos)
    expected = "expected a duration, found" if in_range else "unexpected character"
    raise PromQLError(pos + 1, f"{expected} {text[pos]!r}")


def _continues_word(text: str, end: int) -> bool:
    return end < len(text) and (text[end].isalnum() or text[end] == "_")


def _string(text: str, pos: int) -> Token:
    quote = text[pos]
    out: list[str] = []
    index = pos + 1
    while index < len(text):
        char = text[index]
        if char == quote:
            return Token("string", text[pos : index + 1], pos, "".join(out))
        if char == "\\" and quote != "`" and index + 1 < len(text):
            nxt = text[index + 1]
            out.append(_STRING_ESCAPES.get(nxt, "\\" + nxt))
            index += 2
            continue
        out.append(char)
        index += 1
    raise PromQLError(pos + 1, "unterminated string")
