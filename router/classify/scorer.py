"""Explainable scoring: collect weighted signals per category, then decide.

``score_expression`` parses the alert's PromQL and runs the feature table;
``score_name`` adds the word cues. ``decide`` picks a category only when its total
reaches :data:`THRESHOLD` and beats the runner-up by :data:`MARGIN`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from router.classify.exprfacts import ExprFacts, facts_from_ast, facts_from_tokens
from router.classify.features import FEATURES
from router.classify.promql import PromQLError, parse
from router.classify.vocabulary import score_text

SCORED_CATEGORIES = ("latency", "error_rate", "db_saturation", "crashloop")
THRESHOLD = 2.0
MARGIN = 1.0


@dataclass(frozen=True)
class Signal:
    """One weighted piece of evidence; ``category=None`` weighs on every category."""

    category: str | None
    weight: float
    reason: str


@dataclass(frozen=True)
class Decision:
    category: str | None
    totals: dict[str, float]

    def summary(self) -> str:
        ranked = sorted(self.totals.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{name} {total:+g}" for name, total in ranked if total)


def totals(signals: Iterable[Signal]) -> dict[str, float]:
    result = dict.fromkeys(SCORED_CATEGORIES, 0.0)
    for signal in signals:
        for category in [signal.category] if signal.category else SCORED_CATEGORIES:
            result[category] = round(result.get(category, 0.0) + signal.weight, 3)
    return result


def decide(signals: Iterable[Signal]) -> Decision:
    """The winning category, or ``None`` when no category is clearly ahead."""
    scores = totals(signals)
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    (best, top), runner_up = ranked[0], (ranked[1][1] if len(ranked) > 1 else 0.0)
    winner = best if top >= THRESHOLD and top - max(runner_up, 0.0) >= MARGIN else None
    return Decision(winner, scores)


@functools.lru_cache(maxsize=1024)
def expression_facts(expression: str) -> ExprFacts:
    """Facts from the parsed expression, or from its tokens when it does not parse.

    Memoised (the facts are frozen): the classifier and the runbook finder both read
    the alert's expression, and the alerts of one rule share it. Both callers bound its
    length (``MAX_EXPRESSION_CHARS``), which bounds the cache.
    """
    try:
        return facts_from_ast(parse(expression))
    except PromQLError as exc:
        return facts_from_tokens(expression, exc)
    except RecursionError:
        return facts_from_tokens(expression, PromQLError(1, "expression nested too deeply"))


def score_expression(expression: str) -> tuple[list[Signal], list[str]]:
    """Signals from the features table, and notes (such as a parse error) for the reasons."""
    facts = expression_facts(expression)
    notes = []
    if facts.parse_error:
        notes.append(f"expr: could not parse ({facts.parse_error}); scored its tokens instead")
    signals = []
    for feature in FEATURES:
        subject = feature.find(facts)
        if subject is not None:
            signals.append(Signal(feature.category, feature.weight, feature.reason(subject)))
    return signals, notes


def score_name(
    alertname: str, labels: Mapping[str, str], annotations: Mapping[str, str]
) -> list[Signal]:
    return [
        Signal(h.category, h.weight, h.reason()) for h in score_text(alertname, labels, annotations)
    ]
