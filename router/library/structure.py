"""Which sections are runbooks, and which are just parts of one.

A *part* is a generic heading inside a runbook (``Symptoms``, ``### Alert``,
``Step 2: …``, ``Common Causes & Fixes``, ``If CPU-bound:``). A *runbook* is a
section that declares alerts, or that is made of parts; a *container* groups
several runbooks (``# Operational Runbooks``, ``## High Severity Alerts``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from router.library.model import Section

_PART_WORDS = (
    r"alerts?(?: (?:details|definition|info|rules?|name))?$",
    r"symptoms?",
    r"signs",
    r"severity",
    r"impact",
    r"summary",
    r"overview",
    r"description",
    r"context",
    r"background",
    r"investigat\w*",
    r"diagnos\w*",
    r"triage",
    r"steps?",
    r"checks?",
    r"(?:common |possible |likely |known )?causes?",
    r"root cause",
    r"fix(?:es)?",
    r"resolution",
    r"resolve",
    r"remediation",
    r"mitigat\w*",
    r"workarounds?",
    r"options?",
    r"quick fix",
    r"(?:short|medium|long)[- ]term",
    r"if",
    r"when",
    r"verif\w*",
    r"validation",
    r"prevention",
    r"follow[- ]?ups?",
    r"post[- ]?\w+",
    r"escalat\w*",
    r"communication",
    r"notes?",
    r"references?",
    r"related",
    r"see also",
    r"table of contents",
    r"contents",
    r"toc",
    r"dashboards?",
    r"useful",
    r"further reading",
    r"owners?",
    r"contacts?",
)
_PART = re.compile(r"(?:" + "|".join(_PART_WORDS) + r")\b")
_LEADING_NUMBERING = re.compile(r"^[\W\d_]+")


def is_part(section: Section) -> bool:
    """True for generic headings that only structure a runbook."""
    if section.level == 0:
        return False
    title = _LEADING_NUMBERING.sub("", section.title.lower())
    return bool(_PART.match(title))


def meaningful(section: Section) -> Section:
    """The nearest section (itself or an ancestor) that is not a part."""
    node = section
    while is_part(node) and node.parent is not None:
        node = node.parent
    return node


def mark_runbooks(top: Section, root: Section, declaring: set[Section]) -> None:
    """Set ``is_runbook`` on the sections of one file; the top section if none qualifies."""
    holders = _declaring_ancestors(declaring)
    _mark_group([root], declaring, holders, inside=False)
    if not any(s.is_runbook for s in root.walk()):
        top.is_runbook = True


def _declaring_ancestors(declaring: Iterable[Section]) -> set[Section]:
    holders: set[Section] = set()
    for section in declaring:
        holders.update(section.ancestors())
    return holders


def _has_part_child(section: Section) -> bool:
    return any(is_part(c) for c in section.children)


def _is_container(section: Section, declaring: set[Section], holders: set[Section]) -> bool:
    if section in holders:
        return True
    candidates = [
        c for c in section.children if not is_part(c) and (c in declaring or _has_part_child(c))
    ]
    return len(candidates) >= 2


def _mark_group(
    group: list[Section], declaring: set[Section], holders: set[Section], inside: bool
) -> None:
    """Mark one list of sibling sections, then recurse into each."""
    eligible = {
        s
        for s in group
        if not inside and not is_part(s) and not _is_container(s, declaring, holders)
    }
    runbooks = {s for s in group if s in declaring}
    runbooks |= {s for s in eligible if _has_part_child(s)}
    if runbooks:
        runbooks |= eligible
    for section in group:
        section.is_runbook = section in runbooks
        nested = inside or section.is_runbook or is_part(section)
        _mark_group(section.children, declaring, holders, nested)
