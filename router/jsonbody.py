"""Parsing request bodies written by someone else: JSON that is valid, shallow and storable.

Every endpoint (and the CLI) parses its JSON here, so each refuses the same hostile
shapes with the same clear message instead of a 500: bytes that are not UTF-8, nesting deeper than
:data:`MAX_DEPTH`, and numbers longer than Python converts. The characters a store
cannot hold, a lone surrogate escape (``"\\ud800"``: not UTF-8) and NUL (``"\\u0000"``:
not PostgreSQL text), become U+FFFD, as Go's encoder (Alertmanager's) does with invalid
UTF-8, so the request keeps its alerts.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

MAX_DEPTH = 32
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:[dD][89a-fA-F]|0000)")


class BadJSON(ValueError):
    """A body that is not acceptable JSON; ``detail`` says where and why."""

    def __init__(self, detail: dict[str, Any]) -> None:
        super().__init__(detail["message"])
        self.detail = detail


def parse_json(body: bytes | str) -> Any:
    """The parsed body, or :class:`BadJSON` naming what is wrong with it."""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    data = _decode(raw)
    if _may_nest_deeper(raw) and _depth(data) > MAX_DEPTH:
        raise BadJSON({"message": f"nested too deeply, the limit is {MAX_DEPTH} levels"})
    return _storable(data) if _UNSTORABLE_ESCAPE.search(raw) else data


def _decode(raw: bytes) -> Any:
    """msgspec's fast parse; what it refuses, the standard library's, for its exact errors."""
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        pass
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadJSON({"position": exc.start, "message": "the body is not valid UTF-8"}) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadJSON({"line": exc.lineno, "column": exc.colno, "message": exc.msg}) from None
    except RecursionError:
        raise BadJSON({"message": f"nested too deeply, the limit is {MAX_DEPTH} levels"}) from None
    except ValueError:  # an integer longer than Python's conversion limit
        raise BadJSON({"message": "a number has too many digits"}) from None


def _may_nest_deeper(raw: bytes) -> bool:
    """False when the body has too few brackets to nest beyond the limit (most bodies)."""
    return raw.count(b"[") + raw.count(b"{") > MAX_DEPTH


def _depth(data: Any) -> int:
    """How deeply lists and objects nest (iterative: the parser allows more than Python's stack)."""
    deepest = 0
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in value if isinstance(child, list | dict))
    return deepest


def _storable(value: Any) -> Any:
    """``value`` with lone surrogates and NUL replaced by U+FFFD (the depth is bounded)."""
    if isinstance(value, str):
        text = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return text.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_storable(v) for v in value]
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    return value
