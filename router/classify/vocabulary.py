"""Words in the alert name, a few labels and the annotations, as weighted cues.

Names are split into words (``KubePodCrashLooping`` → ``kube pod crash looping``,
``mysql_too_many_connections`` → ``mysql too many connections``); each
:class:`Cue` is a regex over those words. Negative cues ("4xx", "disk", "down",
"image pull", "replication lag", "too few") count against a category.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

TEMPLATE = re.compile(r"\{\{.*?\}\}", re.DOTALL)
CAMEL = re.compile(r"[A-Za-z][0-9]+(?![a-z])|[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+[a-z]*")
TEXT_ANNOTATIONS = ("summary", "description", "message")
TEXT_LABELS = ("reason", "slo", "sloth_slo", "slo_name", "category")

ALERTNAME_WEIGHT = 1.0
LABEL_WEIGHT = 1.0
ANNOTATION_WEIGHT = 0.5


@dataclass(frozen=True)
class Cue:
    category: str | None  # None: every built-in category
    weight: float
    pattern: re.Pattern[str]


def cue(category: str | None, weight: float, pattern: str) -> Cue:
    return Cue(category, weight, re.compile(rf"\b(?:{pattern})\b"))


_DB = r"postgres(?:ql)?|pg|mysql|mariadb|redis|pgbouncer|database|db|mongo(?:db)?|sql"

CUES: tuple[Cue, ...] = (
    cue("latency", 2, r"latenc(?:y|ies)|response times?|slow (?:requests?|responses?)"),
    cue("latency", 1, r"p(?:50|90|95|99|999)|percentile|quantile|request durations?"),
    cue("latency", -2, r"disks?|io|iops|fsync|filesystem|wal"),
    cue("error_rate", 2.5, r"5xx|server errors?|error (?:rate|ratio|budget)"),
    cue("error_rate", 2, r"(?:failed|failing|errored) requests|request (?:errors|failures)"),
    cue("error_rate", 1, r"errors?"),
    cue("error_rate", 1.5, r"availability"),
    cue("error_rate", 0.5, r"burn(?:ing)?(?: rate)?|slo"),
    cue("error_rate", -4, r"4xx|client errors?"),
    cue("db_saturation", 0.75, _DB),
    cue("db_saturation", 1, r"connections?|clients|backends|sessions|conn(?:ection)? pool|pool"),
    cue(
        "db_saturation", 0.75, r"too many|max(?:imum)? connections|maxclients|exhausted|saturat\w*"
    ),
    cue("db_saturation", -3, r"replication|lag|replicas?|too few|low connections"),
    cue("crashloop", 3, r"crash ?loop(?:ing|s)?|crash ?loop ?back ?off|crashing"),
    cue("crashloop", 2, r"restart(?:s|ing|ed)?|restarted"),
    cue("crashloop", 1, r"oom ?kill(?:ed|er|s)?|out of memory"),
    cue("crashloop", -3, r"image ?pull|err ?image ?pull|container ?creating|not ready|pending"),
    cue(None, -2, r"down|unreachable|absent|missing|not responding|probe failed"),
)


def words_of(text: str) -> str:
    """Lower-case words of a name or sentence, split on CamelCase and punctuation."""
    text = TEMPLATE.sub(" ", text)
    return " ".join(w.lower() for w in CAMEL.findall(text))


@dataclass(frozen=True)
class TextHit:
    category: str | None
    weight: float
    source: str
    word: str

    def reason(self) -> str:
        target = self.category or "all categories"
        return f'name: {self.source} word "{self.word}" ({self.weight:+g} {target})'


def text_sources(
    alertname: str, labels: Mapping[str, str], annotations: Mapping[str, str]
) -> list[tuple[str, str, float]]:
    """(source, words, weight) for the alert name, text labels and annotations."""
    sources = [("alertname", words_of(alertname), ALERTNAME_WEIGHT)]
    sources += [
        (f"label {k}", words_of(labels[k]), LABEL_WEIGHT) for k in TEXT_LABELS if k in labels
    ]
    sources += [
        (k, words_of(annotations[k]), ANNOTATION_WEIGHT)
        for k in TEXT_ANNOTATIONS
        if k in annotations
    ]
    return sources


def score_text(
    alertname: str, labels: Mapping[str, str], annotations: Mapping[str, str]
) -> list[TextHit]:
    """Every cue found, at most once per cue and category (the strongest source wins)."""
    best: dict[int, TextHit] = {}
    for source, words, scale in text_sources(alertname, labels, annotations):
        for index, item in enumerate(CUES):
            found = item.pattern.search(words)
            if found is None:
                continue
            hit = TextHit(item.category, item.weight * scale, source, found.group())
            if index not in best or abs(hit.weight) > abs(best[index].weight):
                best[index] = hit
    return [best[i] for i in sorted(best)]
