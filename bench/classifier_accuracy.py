"""Measure the classifier on a corpus of real alerting rules.

Usage: ``.venv/bin/python bench/classifier_accuracy.py [CORPUS.yaml] [--quiet] [--library DIR]
[--expr-only]``

Each corpus entry becomes a firing Alert (labels = static + example_from_expr +
alertname; the expression goes into ``generatorURL``), classified with the default
rules and an empty runbook index, or with the runbook library in ``--library DIR``
(whose declarations and ``runbook_url`` targets also classify). ``other`` (or
``unclassified``) in the corpus means ``unclassified``; an optional ``reason`` per
entry (as in ``bench/heldout_alerts.yaml``) is printed with each miss. ``--expr-only``
removes the alert name, the annotations and the text labels, so only the PromQL decides.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from router.alerts import Alert  # noqa: E402
from router.classify import EmptyRunbookIndex, EvidenceClassifier, load_rules  # noqa: E402
from router.classify.vocabulary import TEXT_LABELS  # noqa: E402
from router.library import RunbookLibrary  # noqa: E402
from router.pipeline import RunbookIndex  # noqa: E402
from router.triage import Classification  # noqa: E402

DEFAULT_CORPUS = REPO_ROOT / ".." / "shared" / "eval" / "alert_rules_corpus.yaml"
CATEGORIES = ("latency", "error_rate", "db_saturation", "crashloop", "other")


@dataclass(frozen=True)
class Outcome:
    entry: dict
    expected: str
    predicted: str
    classification: Classification

    @property
    def correct(self) -> bool:
        return self.expected == self.predicted


def alert_from_entry(entry: dict, expr_only: bool = False) -> Alert:
    """The firing alert; with ``expr_only``, nameless and without text to read."""
    labels = entry.get("labels") or {}
    merged = {**(labels.get("static") or {}), **(labels.get("example_from_expr") or {})}
    merged["alertname"] = "" if expr_only else entry["alertname"]
    if expr_only:
        merged = {k: v for k, v in merged.items() if k not in TEXT_LABELS}
    annotations = {} if expr_only else entry.get("annotations") or {}
    expr = entry.get("expr") or ""
    url = f"http://prometheus:9090/graph?g0.expr={quote(str(expr), safe='')}&g0.tab=1"
    return Alert(
        status="firing",
        labels={k: str(v) for k, v in merged.items()},
        annotations={k: str(v) for k, v in annotations.items()},
        startsAt=datetime.now(UTC),
        generatorURL=url,
    )


def run(corpus: Path, library: Path | None = None, expr_only: bool = False) -> list[Outcome]:
    entries = yaml.safe_load(corpus.read_text(encoding="utf-8")) or []
    index: RunbookIndex = RunbookLibrary.load([library]) if library else EmptyRunbookIndex()
    classifier = EvidenceClassifier(load_rules([REPO_ROOT / "rules"]), index)
    outcomes = []
    for entry in entries:
        result = classifier.classify(alert_from_entry(entry, expr_only))
        outcomes.append(
            Outcome(entry, _other(entry["expected_category"]), _other(result.category), result)
        )
    return outcomes


def _other(category: str) -> str:
    return "other" if category == "unclassified" else category


def accuracy(outcomes: list[Outcome]) -> str:
    if not outcomes:
        return "n/a (0 entries)"
    right = sum(o.correct for o in outcomes)
    return f"{right / len(outcomes):6.1%} ({right}/{len(outcomes)})"


def report(outcomes: list[Outcome], quiet: bool) -> None:
    clear = [o for o in outcomes if not o.entry.get("ambiguous")]
    near = [o for o in outcomes if o.entry.get("near_miss_of")]
    print(f"overall                 {accuracy(outcomes)}")
    print(f"excluding ambiguous     {accuracy(clear)}")
    print(f"near misses             {accuracy(near)}")
    print(f"\n{'category':15} {'precision':>10} {'recall':>10} {'n':>4}")
    for category in CATEGORIES:
        predicted = [o for o in outcomes if o.predicted == category]
        actual = [o for o in outcomes if o.expected == category]
        precision = sum(o.correct for o in predicted) / len(predicted) if predicted else 0.0
        recall = sum(o.correct for o in actual) / len(actual) if actual else 0.0
        print(f"{category:15} {precision:10.1%} {recall:10.1%} {len(actual):4}")
    print_confusion(outcomes)
    print(f"\nmatched_by: {dict(Counter(o.classification.matched_by for o in outcomes))}")
    if not quiet:
        print_misses(outcomes)


def print_confusion(outcomes: list[Outcome]) -> None:
    counts = Counter((o.expected, o.predicted) for o in outcomes)
    short = {c: c[:8] for c in CATEGORIES}
    print("\nconfusion (rows: expected, columns: predicted)")
    print(" " * 15 + "".join(f"{short[c]:>10}" for c in CATEGORIES))
    for expected in CATEGORIES:
        print(f"{expected:15}" + "".join(f"{counts[(expected, p)]:10}" for p in CATEGORIES))


def print_misses(outcomes: list[Outcome]) -> None:
    misses = [o for o in outcomes if not o.correct]
    print(f"\nmisses ({len(misses)})")
    for o in misses:
        flags = " ambiguous" if o.entry.get("ambiguous") else ""
        flags += f" near_miss_of={o.entry['near_miss_of']}" if o.entry.get("near_miss_of") else ""
        print(f"\n- {o.entry['alertname']}: expected {o.expected}, got {o.predicted} "
              f"by {o.classification.matched_by}{flags}")  # fmt: skip
        print(f"  expr: {' '.join(str(o.entry.get('expr', '')).split())[:300]}")
        if o.entry.get("reason"):
            print(f"  expected because: {o.entry['reason']}")
        for reason in o.classification.reasons:
            print(f"  · {reason}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--quiet", action="store_true", help="do not list the misses")
    parser.add_argument(
        "--library", type=Path, metavar="DIR", help="classify with this runbook library"
    )
    parser.add_argument(
        "--expr-only",
        action="store_true",
        help="remove alert names, annotations and text labels: only the PromQL decides",
    )
    args = parser.parse_args(argv)
    if not args.corpus.exists():
        print(f"corpus not found: {args.corpus}", file=sys.stderr)
        return 2
    if args.library is not None and not args.library.is_dir():
        print(f"runbook library not found: {args.library}", file=sys.stderr)
        return 2
    report(run(args.corpus, args.library, args.expr_only), args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
