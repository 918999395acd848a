"""The classifier: rules first, then the evidence the alert carries.

Order: a matching rule; a runbook section that declares the alert name; a
``runbook_url`` annotation into the library; the alert's own PromQL; its name,
labels and annotation text; otherwise ``unclassified``. Every step says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from router.alerts import Alert
from router.classify.rules import GENERIC_PLAYBOOK, Rule, RuleSet
from router.classify.scorer import Signal, decide, score_expression, score_name
from router.pipeline import RunbookIndex, RunbookSection
from router.triage import (
    BUILTIN_CATEGORIES,
    UNCLASSIFIED,
    Classification,
    MatchedBy,
    RunbookExcerpt,
)

# Scoring costs about 25 µs per character of PromQL and 1 µs per character of text: beyond
# these, an alert is not scored on (the rest of) it, so a hostile alert stays cheap.
MAX_EXPRESSION_CHARS = 2048
MAX_TEXT_CHARS = 4096
RUNBOOK_ANNOTATIONS = ("runbook_url", "runbook", "runbook_URL", "runbookUrl")


class EmptyRunbookIndex:
    """A library with no runbooks, for measuring the classifier on its own."""

    def declared(self, alertname: str) -> RunbookSection | None:
        return None

    def from_url(self, url: str) -> RunbookSection | None:
        return None

    def get(self, ref: str) -> RunbookSection | None:
        return None

    def excerpt(self, section: RunbookSection) -> RunbookExcerpt:
        raise LookupError("the empty runbook index has no sections")


@dataclass(frozen=True)
class _Found:
    """What the runbook steps learned: a category (maybe) and a runbook reference."""

    category: str | None = None
    matched_by: MatchedBy = "fallback"
    runbook_ref: str | None = None
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EvidenceClassifier:
    """Implements ``router.pipeline.Classifier``."""

    rules: RuleSet
    index: RunbookIndex = field(default_factory=EmptyRunbookIndex)

    def classify(self, alert: Alert) -> Classification:
        rule = self.rules.match(alert.labels)
        if rule is not None:
            return self._from_rule(rule, alert)
        found = self._from_runbooks(alert)
        if found.category is not None:
            return self._result(found.category, found.matched_by, found.reasons, found.runbook_ref)
        return self._from_evidence(alert, found)

    def _from_rule(self, rule: Rule, alert: Alert) -> Classification:
        reasons = [f"rule: {rule.name} matched {rule.describe_matchers()} ({rule.source})"]
        runbook_ref = rule.runbook
        if runbook_ref is None:
            section = self.index.declared(alert.alertname)
            if section is not None:
                runbook_ref = _ref(section)
                reasons.append(f"runbook: {runbook_ref} declares {alert.alertname}")
        return Classification(
            category=rule.category,
            matched_by="rule",
            rule=rule.name,
            reasons=reasons,
            playbook=rule.playbook or self._playbook(rule.category),
            runbook_ref=runbook_ref,
            routing=rule.routing,
        )

    def _from_runbooks(self, alert: Alert) -> _Found:
        """Steps 1 and 2: a section declaring the alert, then the runbook_url annotation."""
        reasons: list[str] = []
        declared_ref = None
        section = self.index.declared(alert.alertname) if alert.alertname else None
        if section is not None:
            declared_ref = _ref(section)
            reasons.append(f"runbook: {declared_ref} declares {alert.alertname}")
            if self._known(section.category):
                return _Found(section.category, "runbook", declared_ref, reasons)
            reasons.append(f"runbook: {declared_ref} has no known category")
        url = _runbook_url(alert)
        if url is None:
            return _Found(None, "fallback", declared_ref, reasons)
        linked = self.index.from_url(url)
        if linked is not None and self._known(linked.category):
            reasons.append(f"annotation: runbook_url {url} is {_ref(linked)}")
            return _Found(linked.category, "annotation", _ref(linked), reasons)
        if linked is not None:
            reasons.append(
                f"annotation: runbook_url {url} is {_ref(linked)}, which has no category"
            )
        else:
            reasons.append(f"annotation: runbook_url {url} is not in the library; kept as a link")
        return _Found(None, "fallback", declared_ref or url, reasons)

    def _from_evidence(self, alert: Alert, found: _Found) -> Classification:
        reasons = list(found.reasons)
        expr_signals: list[Signal] = []
        if len(alert.expression or "") > MAX_EXPRESSION_CHARS:
            reasons.append(f"expr: longer than {MAX_EXPRESSION_CHARS:,} characters, not scored")
        elif alert.expression:
            expr_signals, notes = score_expression(alert.expression)
            reasons += notes + [s.reason for s in expr_signals]
            decision = decide(expr_signals)
            if decision.category is not None:
                return self._result(decision.category, "expression", reasons, found.runbook_ref)
        else:
            reasons.append("expr: the alert carries no expression")
        name_signals = score_name(
            _clipped(alert.alertname), _clip_all(alert.labels), _clip_all(alert.annotations)
        )
        reasons += [s.reason for s in name_signals]
        decision = decide(expr_signals + name_signals)
        if decision.category is not None and name_signals:
            return self._result(decision.category, "name", reasons, found.runbook_ref)
        reasons.append(f"fallback: no decisive evidence ({decision.summary() or 'no signals'})")
        return self._result(UNCLASSIFIED, "fallback", reasons, found.runbook_ref)

    def _result(
        self, category: str, matched_by: MatchedBy, reasons: list[str], runbook_ref: str | None
    ) -> Classification:
        return Classification(
            category=category,
            matched_by=matched_by,
            reasons=reasons,
            playbook=self._playbook(category),
            runbook_ref=runbook_ref,
        )

    def _known(self, category: str | None) -> bool:
        return category is not None and (
            category in BUILTIN_CATEGORIES or category in self.rules.categories
        )

    def _playbook(self, category: str) -> str:
        builtin = category in BUILTIN_CATEGORIES and category != UNCLASSIFIED
        return category if builtin else GENERIC_PLAYBOOK


def _ref(section: RunbookSection) -> str:
    return f"{section.path}#{section.anchor}" if section.anchor else section.path


def _runbook_url(alert: Alert) -> str | None:
    return next(
        (alert.annotations[k] for k in RUNBOOK_ANNOTATIONS if alert.annotations.get(k)), None
    )


def _clipped(text: str) -> str:
    return text[:MAX_TEXT_CHARS]


def _clip_all(texts: dict[str, str]) -> dict[str, str]:
    """Each value's first MAX_TEXT_CHARS characters: the words that matter come first."""
    return {k: v[:MAX_TEXT_CHARS] for k, v in texts.items()}
