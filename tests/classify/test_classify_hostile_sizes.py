"""Alerts of hostile size are classified on a bounded prefix of their text."""

from __future__ import annotations

from urllib.parse import quote

from router.alerts import Alert
from router.classify.classifier import MAX_EXPRESSION_CHARS, MAX_TEXT_CHARS
from router.config import Settings
from router.service import load_components

CLASSIFIER = load_components(Settings()).classifier


def alert(expr: str = "", **annotations: str) -> Alert:
    url = f"http://prometheus:9090/graph?g0.expr={quote(expr)}" if expr else ""
    return Alert(
        status="firing",
        labels={"alertname": "Something"},
        annotations=annotations,
        startsAt="2026-11-22T10:00:00Z",
        generatorURL=url,
    )


def test_an_expression_too_long_to_score_says_so() -> None:
    expr = "histogram_quantile(0.99, rate(x_bucket[5m])) + " * 100 + "up"
    assert len(expr) > MAX_EXPRESSION_CHARS
    found = CLASSIFIER.classify(alert(expr))
    assert f"expr: longer than {MAX_EXPRESSION_CHARS:,} characters, not scored" in found.reasons
    assert found.matched_by != "expression"


def test_a_huge_description_is_scored_on_its_beginning() -> None:
    cue = 'name: description word "latency" (+1 latency)'
    early = "p99 latency is above the SLO. " + "x " * 500_000
    assert cue in CLASSIFIER.classify(alert(description=early)).reasons
    late = "x " * MAX_TEXT_CHARS + "p99 latency is above the SLO."
    assert cue not in CLASSIFIER.classify(alert(description=late)).reasons
