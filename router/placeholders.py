"""Commands ready to paste: fill a runbook excerpt's placeholders from what the router knows.

Values come from the alert's labels first, then from the names the diagnostics found
on the way (a pod's Deployment, the one pod of a workload that is in trouble), and the
note says which came from where.

Only code is touched (fenced blocks and inline code), never prose, and only these
forms, for the names below (case, ``-``/``_`` and a ``name`` suffix do not matter):

- ``<namespace>``, ``<pod-name>``;
- ``$NAMESPACE``, ``${POD}`` (upper case only);
- ``{{ namespace }}``, ``{{ $labels.namespace }}``, ``{{ .Labels.namespace }}``;
- ``NAMESPACE=...``, ``NS=<namespace>``, ``POD=""`` (the assigned value is filled).

A label value is attacker-controlled text, so it is only substituted when it is a plain
token: letters, digits and ``._-:/@``, starting with a letter or digit (no option
injection such as ``--all``), at most 253 characters. Any other value is not
substituted at all (the placeholder stays as written, and the note says so): no
substitution can turn one command into two.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from router.triage import RunbookExcerpt

# placeholder name -> the labels that give its value, in order of preference
SOURCES: dict[str, tuple[str, ...]] = {
    "namespace": ("namespace", "exported_namespace"),
    "pod": ("pod", "pod_name"),
    "container": ("container", "container_name"),
    "deployment": ("deployment",),
    "statefulset": ("statefulset",),
    "daemonset": ("daemonset",),
    "service": ("service",),
    "instance": ("instance",),
    "job": ("job",),
    "node": ("node",),
    "datname": ("datname", "database"),
}
ALIASES = {"ns": "namespace", "deploy": "deployment", "svc": "service", "db": "datname"}
ALIASES |= {"database": "datname", "host": "instance"}
MAX_VALUE = 253

_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-:/@]*")
_PLACEHOLDER = re.compile(
    r"""\b(?P<var>[A-Z][A-Z0-9_]*)=(?P<unset>\.\.\.|""|''|<[^<>\s]*>)"""
    r"|<(?P<angle>[A-Za-z][\w-]*)>"
    r"|\$\{(?P<braced>[A-Z][A-Z0-9_]*)\}"
    r"|\$(?P<dollar>[A-Z][A-Z0-9_]*)\b"
    r"|\{\{\s*(?:\$labels\.|\.Labels\.)?(?P<template>[A-Za-z][\w-]*)\s*\}\}"
)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_INLINE = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
# Private-use characters around a number: where a value was filled, in ``Filled.template``.
_MARK_OPEN, _MARK_CLOSE = "\ue000", "\ue001"


@dataclass(frozen=True)
class Filled:
    """The excerpt with its placeholders filled, what was filled, and what was refused."""

    markdown: str
    filled: dict[str, str] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    # ``markdown`` with a marker where each value went, and marker -> value: the same
    # template for every alert with the same placeholders filled, so a sink can convert
    # it once ("" when the markdown itself holds a marker character).
    template: str = ""
    marks: dict[str, str] = field(default_factory=dict)

    def note(self, found: Iterable[str] = ()) -> str:
        """One line for the message, ``found`` naming the values the diagnostics found:
        ``Filled from the alert: namespace=shop; found by diagnostics: deployment=api``."""
        found = set(found)
        given = _listed({k: v for k, v in self.filled.items() if k not in found})
        learned = _listed({k: v for k, v in self.filled.items() if k in found})
        parts = []
        if given:
            parts.append(f"Filled from the alert: {given}")
        if learned:
            parts.append(
                f"found by diagnostics: {learned}"
                if given
                else f"Filled from what diagnostics found: {learned}"
            )
        if self.refused:
            parts.append("not filled (not a plain value): " + ", ".join(self.refused))
        return "; ".join(parts)


def _listed(values: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


@functools.lru_cache(maxsize=1024)
def canonical(name: str) -> str | None:
    """The placeholder a written name stands for (``POD_NAME`` → ``pod``), or None."""
    key = name.lower().replace("-", "").replace("_", "")
    for candidate in (key, key.removesuffix("name")):
        candidate = ALIASES.get(candidate, candidate)
        if candidate in SOURCES:
            return candidate
    return None


def values_from_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """Each placeholder's value from the alert's labels, where it has one."""
    values = {}
    for name, sources in SOURCES.items():
        value = next((labels[s] for s in sources if labels.get(s)), None)
        if value is not None:
            values[name] = value
    return values


def is_plain(value: str) -> bool:
    """Safe to paste into a shell command unquoted: one token, not an option."""
    return len(value) <= MAX_VALUE and _PLAIN.fullmatch(value) is not None


def fill(markdown: str, values: Mapping[str, str]) -> Filled:
    """Fill the recognised placeholders in the code of ``markdown`` with ``values``."""
    filled: dict[str, str] = {}
    refused: list[str] = []
    marks: dict[str, str] = {}  # value -> its marker

    def substitute(match: re.Match[str]) -> str:
        written = next(g for g in match.groupdict().values() if g is not None)
        name = canonical(written)
        if name is None or name not in values:
            return match.group(0)
        value = values[name]
        if not is_plain(value):
            if name not in refused:
                refused.append(name)
            return match.group(0)
        filled.setdefault(name, value)
        mark = marks.setdefault(value, f"{_MARK_OPEN}{len(marks)}{_MARK_CLOSE}")
        return f"{match['var']}={mark}" if match["var"] else mark

    def in_code(text: str) -> str:
        return _PLACEHOLDER.sub(substitute, text)

    template = "".join(in_code(text) if code else text for text, code in _parts(markdown))
    values_of = {mark: value for value, mark in marks.items()}
    if _MARK_OPEN in markdown:  # a marker would be ambiguous: no template
        return Filled(unmark(template, values_of), filled, refused)
    return Filled(unmark(template, values_of), filled, refused, template, values_of)


@functools.lru_cache(maxsize=512)
def _parts(markdown: str) -> tuple[tuple[str, bool], ...]:
    """``markdown`` cut into its pieces, each with whether it is code (a fenced block's
    line or an inline span's content), in order; the same for every alert of a section."""
    parts: list[tuple[str, bool]] = []
    fence = ""
    for line in markdown.splitlines(keepends=True):
        opening = _FENCE.match(line)
        if fence:
            closes = opening and opening[1][0] == fence[0] and len(opening[1]) >= len(fence)
            fence = "" if closes and not line.strip().strip(fence[0]) else fence
            parts.append((line, bool(fence)))
        elif opening:
            fence = opening[1]
            parts.append((line, False))
        else:
            start = 0
            for span in _INLINE.finditer(line):
                parts += [(line[start : span.start()] + span[1], False), (span[2], True)]
                parts.append((span[1], False))
                start = span.end()
            parts.append((line[start:], False))
    return tuple(parts)


def unmark(text: str, marks: Mapping[str, str]) -> str:
    """``text`` with each marker replaced by its value."""
    for mark, value in marks.items():
        text = text.replace(mark, value)
    return text


def ready_to_paste(
    excerpt: RunbookExcerpt, labels: Mapping[str, str], found: Mapping[str, str] | None = None
) -> RunbookExcerpt:
    """The excerpt with its commands filled from ``labels``, then from the names the
    diagnostics ``found`` for what the labels do not say, and the note saying what was."""
    given = values_from_labels(labels)
    learned = {k: v for k, v in (found or {}).items() if k in SOURCES and k not in given}
    result = fill(excerpt.markdown, given | learned)
    update = {"markdown": result.markdown, "filled": result.note(learned)}
    return excerpt.model_copy(update=update | {"template": result.template, "marks": result.marks})
