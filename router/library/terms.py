"""Text to search terms, the same way for runbook sections and for alerts.

``terms("CoreDNS pods keep restarting (5xx)")`` → ``coredns core dns pod keep restart 5xx``:
lowercased, CamelCase split (the joined word is kept too, so ``coredns`` in a label
meets ``CoreDNS`` in a heading), English stop words dropped, Snowball-stemmed, and
HTTP status codes folded into their family (``503`` → ``503 5xx``, ``5..`` → ``5xx``).
"""

from __future__ import annotations

import re
from functools import lru_cache

import snowballstemmer

_WORD = re.compile(r"[A-Za-z0-9]+")
_CAMEL_PART = re.compile(
    r"[A-Za-z][0-9]+(?![a-z])|[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+[a-z]*"
)
_STATUS_CODE = re.compile(r"([45])(?:\d\d|xx|\.\.|\\d\\d|\[0-9\]\[0-9\])", re.I)
_STEMMER = snowballstemmer.stemmer("english")
_stem = lru_cache(maxsize=65536)(_STEMMER.stemWord)  # a pure function: memoised, not state

STOP_WORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing during each few
    for from further had has have having he her here hers him his how i if in into is it its
    itself just me more most my no nor not of off on once only or other our ours out over own
    same she should so some such than that the their them then there these they this those
    through to too under until up very was we were what when where which while who whom why
    will with would you your yours via per vs etc e g eg ie
    high higher highest low lower lowest elevated increased increasing decreased spike spikes
    many much near nearly almost exceeds exceeded exceeding critical warning severe
    use uses used using""".split()  # noqa: SIM905 - a word list reads better as prose
)
# Magnitude words ("high", "elevated", "near") qualify a problem without naming one.


def terms(text: str) -> list[str]:
    """The search terms of ``text``, in order (repeats kept: they are term frequencies)."""
    found: list[str] = []
    for word in _WORD.findall(text):
        found.extend(_word_terms(word))
    return found


def surfaces(text: str) -> dict[str, str]:
    """Each term of ``text`` and the word it was read from (``{"latenc": "latency"}``)."""
    found: dict[str, str] = {}
    for word in _WORD.findall(text):
        parts = {_stem(p.lower()): p for p in _CAMEL_PART.findall(word)}
        for term in _word_terms(word):
            found.setdefault(term, parts.get(term, word))
    return found


def spans(text: str, longest: int = 3) -> list[tuple[str, list[str]]]:
    """Each run of up to ``longest`` adjacent CamelCase parts, joined and stemmed, with the
    stems of its parts: ``PgBouncerDown`` gives ``("pgbouncer", ["pg", "bouncer"])`` among
    others, so a caller can tell that ``Pg`` + ``Bouncer`` spell ``pgbouncer``."""
    found = []
    for word in _WORD.findall(text):
        parts = [p.lower() for p in _CAMEL_PART.findall(word)] or [word.lower()]
        for i in range(len(parts)):
            for j in range(i + 1, min(i + longest, len(parts)) + 1):
                found.append((_stem("".join(parts[i:j])), parts[i:j]))
    return [(joined, [_stem(p) for p in run]) for joined, run in found]


def word_terms(text: str) -> list[tuple[str, ...]]:
    """The terms of each word of ``text`` that has any (``CoreDNS`` → ``(coredn, core, dns)``);
    a long compound counts as its parts (``QueryGrpcErrorsHigh`` → four words)."""
    found = []
    for word in _WORD.findall(text):
        parts = _CAMEL_PART.findall(word)
        for piece in parts if len(parts) > 2 else [word]:
            if stems := _word_terms(piece):
                found.append(stems)
    return found


def status_family(value: str) -> str | None:
    """``5xx`` for ``503``, ``5..``, ``5xx`` or ``5[0-9][0-9]`` (4xx likewise); else None."""
    match = _STATUS_CODE.fullmatch(value.strip())
    return f"{match[1]}xx" if match else None


@lru_cache(maxsize=65536)
def _word_terms(word: str) -> tuple[str, ...]:
    lower = word.lower()
    family = status_family(lower)
    if family:
        return (lower, family) if lower != family else (family,)
    if lower[0].isdigit():
        return ()  # thresholds, durations and counts say nothing about the problem
    parts = [p.lower() for p in _CAMEL_PART.findall(word)]
    # The joined form too ("coredns" for "CoreDNS"), unless it is a long compound.
    words = [lower, *parts] if 1 < len(parts) <= 2 else parts if parts else [lower]
    kept = [w for w in words if w not in STOP_WORDS and len(w) > 1 and not w[0].isdigit()]
    return tuple(_stem(w) for w in kept)
