"""What each heading of a runbook is: a topic, a part of one, or reference material.

A *topic* names a problem or a thing (``High Latency``, ``CoreDNS``, ``Check for IO
saturation``, ``Alert: Elevated 5xx Error Rate``): topics are what the finder may
answer with. A *part* is a generic heading inside a topic (``Symptoms``,
``2. Remediation``, ``Step 3: …``, ``If CPU-bound``, ``Cause 2: …``, ``Common Issues``):
its text belongs to the topic above it. *Reference* sections describe the document
or the service rather than a problem (``Overview``, ``Contacts``, ``Escalation``,
``Monitoring``): they are never an answer and add nothing to any topic.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal

from router.library.model import RunbookFile, Section
from router.library.terms import terms

Kind = Literal["topic", "part", "reference"]

_GENERIC = frozenset(
    """alert alerts alerting details detail definition definitions info rule rules name
    symptom symptoms sign signs severity impact summary context background
    investigation investigations investigate investigating diagnosis diagnose diagnosing
    diagnostic diagnostics triage triaging step steps check checks checklist cause causes
    root common possible likely known typical fix fixes fixing resolution resolutions resolve
    resolving remediation remediate remediating mitigation mitigations mitigate mitigating
    workaround workarounds option options quick immediate action actions short medium long
    term verify verifying verification validation validate prevention prevent preventing
    follow up followup post incident mortem postmortem procedure procedures detection detect
    logic what do next how handle handling respond response playbook runbook runbooks
    troubleshoot troubleshooting solution solutions issue issues problem problems fault faults
    scenario scenarios recovery recover expected behaviour behavior example examples
    first initial general further notes note tips tip faq some other frequent frequently
    meaning means explanation explained
    asked questions most
    and or the a an to of for in on with if when then""".split()  # noqa: SIM905 - a word list reads better as prose
)
_REFERENCE = frozenset(
    """overview introduction intro about purpose scope architecture service services
    description contacts contact owner owners ownership team teams escalation escalations
    escalate communication communications on call oncall rotation emergency monitoring
    observability metrics metric dashboards dashboard links link quick references reference
    related see also documentation docs document table contents toc glossary appendix
    changelog history revision maintenance useful further reading resources prerequisites
    requirements key locations location log logs trace traces tracing monitor telemetry
    and or the a an to of for in on with our""".split()  # noqa: SIM905 - a word list reads better as prose
)
# The stems of every generic and reference word, for measuring what a title names.
GENERIC_TERMS = frozenset(terms(" ".join(_GENERIC | _REFERENCE)))
_ENUMERATOR = re.compile(
    r"^(?:(?:step|phase|stage|option|cause|scenario|case|method|approach|part)\s*\d+\b"
    r"|(?:if|when|otherwise|else|unless)\b)"
)
_NUMBERING = re.compile(r"^[^A-Za-z]+")
_PARENTHESES = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_WORDS = re.compile(r"[a-z]+")


def kind(section: Section) -> Kind:
    """What this heading is (the file section is always a topic)."""
    if section.level == 0:
        return "topic"
    title = _NUMBERING.sub("", section.title.lower())
    if _ENUMERATOR.match(title):
        return "part"
    words = _WORDS.findall(_PARENTHESES.sub(" ", title))
    if not words:
        return "topic"
    if all(w in _GENERIC for w in words):
        return "part"
    if all(w in _REFERENCE or w in _GENERIC for w in words):
        return "reference"
    return "topic"


def is_part(section: Section) -> bool:
    """True for generic headings that only structure a topic."""
    return kind(section) == "part"


def meaningful(section: Section) -> Section:
    """The nearest section (itself or an ancestor) that is not a part."""
    node = section
    while is_part(node) and node.parent is not None:
        node = node.parent
    return node


def topics(runbook: RunbookFile) -> Iterator[Section]:
    """The sections of a file that may be an answer, in document order.

    The file's top (its single ``#`` title, else the file itself: a page titled only in
    its front matter, or without headings, is about something too), then every other
    topic heading.
    """
    found = [s for s in runbook.root.walk() if s.level > 0 and kind(s) == "topic"]
    if runbook.top not in found and (runbook.top.level == 0 or not found):
        yield runbook.top
    yield from found


def own_parts(section: Section) -> Iterator[Section]:
    """The section and the parts whose text is its own, not its sub-topics'.

    Its part children, and the part siblings that follow it up to the next sibling
    that is not a part: ``## Alert: X`` then ``## Remediation`` at the same level
    is X's remediation.
    """
    yield section
    for child in section.children:
        if kind(child) == "part" and not _follows_topic(child):
            yield from _part_tree(child)
    for sibling in _following_parts(section):
        yield from _part_tree(sibling)


def _part_tree(part: Section) -> Iterator[Section]:
    yield part
    for child in part.children:
        if kind(child) == "part":
            yield from _part_tree(child)


def _siblings(section: Section) -> list[Section]:
    return section.parent.children if section.parent is not None else [section]


def _following_parts(section: Section) -> Iterator[Section]:
    if section.level == 0 or not _takes_following_parts(section):
        return
    siblings = _siblings(section)
    for sibling in siblings[siblings.index(section) + 1 :]:
        if kind(sibling) != "part":
            return
        yield sibling


def _follows_topic(part: Section) -> bool:
    """A part that comes after a topic sibling without sub-topics (it belongs to that topic)."""
    siblings = _siblings(part)
    for earlier in reversed(siblings[: siblings.index(part)]):
        if kind(earlier) != "part":
            return _takes_following_parts(earlier)
    return False


def _takes_following_parts(section: Section) -> bool:
    return kind(section) == "topic" and all(kind(c) != "topic" for c in section.children)
