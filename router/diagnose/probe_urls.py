"""Health-probe URLs from templates, where a label value cannot change which host is probed.

Label values are attacker-controlled text (an exporter's label, a forged alert). In
``http://{{ labels.service }}.{{ labels.namespace }}.svc:8080/healthz`` a service
``evil.example/x?`` must not turn the probe into a GET of ``evil.example``. So every
value a template substitutes is placed by where it lands in the URL:

- in the host part (after ``://``, before the path): it must be a host name or address,
  with an optional ``:port`` (letters, digits, ``.``, ``-``, ``_``), else the probe is
  refused with an error naming the value's position; a value there that starts with
  ``/`` starts the path, and is placed as a path;
- in the path: percent-encoded, except ``/`` and the characters a path may hold
  (``?`` and ``#`` are encoded, so a value cannot start a query);
- in the query or fragment: percent-encoded except unreserved characters;
- before ``://`` (a template that is one whole value, ``{{ annotations.health_url }}``):
  as written. The template's author chose to take the whole URL from the alert.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from jinja2.environment import Template

OPEN, CLOSE = "\x00", "\x01"  # around each substituted value; stripped from the values
_HOST = re.compile(r"[A-Za-z0-9._-]+(:[0-9]{1,5})?")
_PATH_SAFE = "/-._~!$&'()*+,;=:@"


class UnsafeValue(ValueError):
    """A substituted value that would change where the probe goes."""


def mark(value: Any) -> str:
    """Jinja ``finalize``: fence each substituted value, so :func:`render` can place it."""
    text = "" if value is None else str(value)
    return OPEN + text.replace(OPEN, "").replace(CLOSE, "") + CLOSE


def render(template: Template, variables: dict[str, Any]) -> str:
    """The URL, each value placed by its position (the template's env uses :func:`mark`)."""
    out: list[str] = []
    part = "scheme"
    for literal, value in _pieces(template.render(variables)):
        part = _advance(part, literal)
        out.append(literal)
        if value is not None:
            out.append(_placed(value, part))
    return "".join(out).strip()


def _pieces(rendered: str) -> Iterator[tuple[str, str | None]]:
    """(literal text, the value after it or None) pairs, in order."""
    rest = rendered
    while OPEN in rest:
        literal, _, tail = rest.partition(OPEN)
        value, _, rest = tail.partition(CLOSE)
        yield literal, value
    yield rest, None


def _advance(part: str, literal: str) -> str:
    """Which part of the URL the text after ``literal`` is in."""
    if part == "scheme":
        if "://" not in literal:
            return part
        part, literal = "host", literal.split("://", 1)[1]
    for char in literal:
        if part == "host" and char in "/?#":
            part = {"/": "path", "?": "query", "#": "fragment"}[char]
        elif part == "path" and char in "?#":
            part = "query" if char == "?" else "fragment"
        elif part == "query" and char == "#":
            part = "fragment"
    return part


def _placed(value: str, part: str) -> str:
    if part == "scheme":
        return value
    if part == "host" and value.startswith("/"):
        part = "path"  # ``http://host:8080{{ annotations.health_path }}``: it starts the path
    if part == "host":
        if not _HOST.fullmatch(value) or value[0] in ".-":
            raise UnsafeValue(f"a value in the host part is not a host name: {value[:80]!r}")
        return value
    if part == "path":
        return quote(value, safe=_PATH_SAFE)
    return quote(value, safe="-._~")
