"""Which built-in category a runbook section is about: a small weighted-keyword scorer.

Cues are matched as whole words or phrases in three sources: the section title
and the alert names it declares (strong, x3) and its own first paragraph (weak,
x1). Negative cues (4xx, disk, certificate…) count against every category. The
best category must reach :data:`MIN_SCORE` and beat the runner-up by
:data:`MIN_MARGIN`; every contribution is kept as a reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MIN_SCORE = 6
MIN_MARGIN = 3
STRONG = 3
WEAK = 1

CUES: dict[str, dict[str, int]] = {
    "latency": {
        "latency": 3,
        "slow": 3,
        "slowness": 3,
        "response time": 3,
        "response times": 3,
        "p95": 2,
        "p99": 2,
        "p90": 2,
        "timeout": 1,
        "timeouts": 1,
        "duration": 1,
    },
    "error_rate": {
        "error rate": 3,
        "errors": 2,
        "5xx": 3,
        "availability": 3,
        "burn": 2,
        "burn rate": 1,
        "500": 1,
        "502": 1,
        "503": 2,
        "down": 2,
        "unavailable": 2,
        "outage": 2,
        "failing requests": 3,
    },
    "db_saturation": {
        "database": 2,
        "db": 2,
        "postgres": 1,
        "postgresql": 1,
        "mysql": 1,
        "connection pool": 3,
        "pool": 2,
        "connections": 2,
        "connection": 1,
        "saturation": 2,
        "saturated": 2,
        "exhausted": 1,
        "max_connections": 3,
    },
    "crashloop": {
        "crash": 3,
        "crashes": 3,
        "crashing": 3,
        "crashloop": 3,
        "crashlooping": 3,
        "crashloopbackoff": 3,
        "crash loop": 1,
        "oom": 3,
        "oomkilled": 3,
        "restarts": 2,
        "restarting": 2,
        "memory": 2,
        "backoff": 1,
        "pod": 1,
        "pods": 1,
    },
}

NEGATIVE: dict[str, int] = {
    "4xx": 3,
    "404": 2,
    "disk": 3,
    "certificate": 3,
    "tls": 2,
    "ssl": 2,
    "elasticsearch": 2,
    "index": 2,
    "migration": 3,
    "backup": 3,
    "spam": 3,
    "ddos": 3,
    "quota": 2,
}

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_WORD = re.compile(r"[^0-9a-z_]+")


@dataclass(frozen=True)
class CategoryGuess:
    """The winning category (or None) with the reasons behind every score."""

    category: str | None
    score: int
    reasons: list[str] = field(default_factory=list)


def words_of(text: str) -> str:
    """Lowercased words with CamelCase split, padded with spaces for phrase search."""
    split = _CAMEL_BOUNDARY.sub(" ", text)
    return f" {_NON_WORD.sub(' ', split.lower()).strip()} "


def _hits(cues: dict[str, int], words: str) -> list[tuple[str, int]]:
    return [(cue, weight) for cue, weight in cues.items() if f" {cue} " in words]


def guess_category(title: str, alerts: list[str], intro: str) -> CategoryGuess:
    """Score each built-in category for a section and pick one, if it is clear."""
    sources = [
        ("title", words_of(title), STRONG),
        ("alert", words_of(" ".join(alerts)), STRONG),
        ("text", words_of(intro), WEAK),
    ]
    penalty, reasons = 0, []
    for source, words, factor in sources:
        for cue, weight in _hits(NEGATIVE, words):
            penalty += weight * factor
            reasons.append(f"-{weight * factor} {source} '{cue}'")
    scores: dict[str, int] = {}
    for category, cues in CUES.items():
        score = -penalty
        for source, words, factor in sources:
            for cue, weight in _hits(cues, words):
                score += weight * factor
                reasons.append(f"{category} +{weight * factor} {source} '{cue}'")
        scores[category] = score
    return _decide(scores, reasons)


def _decide(scores: dict[str, int], reasons: list[str]) -> CategoryGuess:
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    (best, top), runner_up = ranked[0], ranked[1][1]
    if top < MIN_SCORE:
        return CategoryGuess(None, top, [*reasons, f"best {best}={top} < {MIN_SCORE}"])
    if top - runner_up < MIN_MARGIN:
        return CategoryGuess(None, top, [*reasons, f"{best}={top} too close to {runner_up}"])
    return CategoryGuess(best, top, reasons)
