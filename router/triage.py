"""The sink-neutral result of triaging one alert.

Every stage of the pipeline adds to a :class:`TriageResult`; every sink (console,
Slack, PagerDuty) renders the same result its own way. Nothing here knows about
any sink.
"""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from typing import Literal, Protocol

from pydantic import BaseModel, Field

from router.alerts import Alert

UNCLASSIFIED = "unclassified"
BUILTIN_CATEGORIES = ("latency", "error_rate", "db_saturation", "crashloop", UNCLASSIFIED)

MatchedBy = Literal["rule", "runbook", "annotation", "expression", "name", "fallback"]
Severity = Literal["critical", "warning", "info", "ok"]


class Routing(BaseModel):
    """Where a rule sends an alert; empty fields mean "the configured default"."""

    slack_channel: str | None = None
    pagerduty_routing_key: str | None = None
    pagerduty_severity: dict[str, str] = Field(default_factory=dict)


class Classification(BaseModel):
    """Which category an alert belongs to, and why."""

    category: str = UNCLASSIFIED
    matched_by: MatchedBy = "fallback"
    rule: str | None = None
    reasons: list[str] = Field(default_factory=list)
    playbook: str | None = None
    runbook_ref: str | None = None
    routing: Routing = Field(default_factory=Routing)


class RunbookLink(BaseModel):
    """A pointer to one runbook section (or an external runbook URL)."""

    path: str | None = None
    anchor: str | None = None
    title: str = ""
    url: str | None = None


class RunbookExcerpt(BaseModel):
    """The matched runbook section: its markdown, with sub-sections and related ones."""

    link: RunbookLink
    markdown: str
    subsections: list[RunbookLink] = Field(default_factory=list)
    related: list[RunbookLink] = Field(default_factory=list)
    why: str = ""
    filled: str = ""  # which placeholders of its commands were filled from the alert
    # Not stored: ``markdown`` with a marker where each filled value went, and marker ->
    # value (``router.placeholders``), so a sink converts a section once, not per alert.
    template: str = Field(default="", exclude=True)
    marks: dict[str, str] = Field(default_factory=dict, exclude=True)


class Evidence(BaseModel):
    """One piece of evidence: a value, a small table, a log excerpt, a note, or a time series.

    A ``series`` (``points`` of unix seconds and value) is what a sink may draw as a
    graph, e.g. the alert's own expression over the last hour.
    """

    kind: Literal["value", "table", "log", "text", "series"]
    label: str = ""
    value: str | None = None
    columns: list[str] = Field(default_factory=list)
    rows: list[list[str]] = Field(default_factory=list)
    text: str | None = None
    points: list[tuple[float, float]] = Field(default_factory=list)


VerdictRole = Literal["cause", "factor", "symptom"]


class Verdict(BaseModel):
    """What the evidence means, and the runbook sub-section that applies.

    ``role`` says what it is: the *cause*, a contributing *factor*, or a *symptom*;
    a symptom a cause explains names that cause's rule in ``explained_by``.
    """

    summary: str
    rule: str
    runbook: RunbookLink | None = None
    role: VerdictRole = "factor"
    explained_by: str | None = None


class Finding(BaseModel):
    """One observation from a diagnostics provider."""

    title: str
    source: str
    severity: Severity = "info"
    evidence: list[Evidence] = Field(default_factory=list)
    verdict: Verdict | None = None


class Diagnosis(BaseModel):
    """What the diagnostics found: findings, and the names of the alert's objects they
    learned on the way (``{"deployment": "api"}`` for a pod's alert), for its commands."""

    findings: list[Finding] = Field(default_factory=list)
    names: dict[str, str] = Field(default_factory=dict)


class AlertHistory(BaseModel):
    """What the store already knows about earlier firings of this alert."""

    days: int  # the window looked at
    earlier: int  # firings before this one within the window
    minutes_to_resolve: list[float] = Field(default_factory=list)  # of those that resolved
    last_verdict: str | None = None  # the top verdict of the previous firing
    scope: str = ""  # "" for this fingerprint, else e.g. "PodCrashLooping in namespace shop"

    @property
    def text(self) -> str:
        """``4th time in 7 days; resolved after 6 to 14 min (median 9); last time: ...``."""
        count = _ordinal(self.earlier + 1)
        parts = [f"{count} time in {self.days} days" + (f" for {self.scope}" if self.scope else "")]
        if durations := sorted(self.minutes_to_resolve):
            low, high, median = durations[0], durations[-1], statistics.median(durations)
            span = (
                f"{low:.0f} min" if round(low) == round(high) else f"{low:.0f}\u2013{high:.0f} min"
            )
            parts.append(
                f"resolved after {span}" + (f" (median {median:.0f})" if len(durations) > 2 else "")
            )
        if self.last_verdict:
            parts.append(f"last time: {self.last_verdict}")
        return "; ".join(parts)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


class StoredAlertState(Protocol):
    """An alert state with where it came from (a job, or the latest state of an alert)."""

    alert: Alert
    external_url: str
    receiver: str
    group_key: str


class TriageResult(BaseModel):
    """Everything known about one alert state, ready for any sink to render."""

    alert: Alert
    external_url: str = ""
    receiver: str = ""
    group_key: str = ""
    classification: Classification = Field(default_factory=Classification)
    runbook: RunbookExcerpt | None = None
    findings: list[Finding] = Field(default_factory=list)
    history: AlertHistory | None = None
    triaged_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def of(cls, stored: StoredAlertState) -> TriageResult:
        """A result not yet triaged, for an alert state as the store keeps it."""
        return cls(
            alert=stored.alert,
            external_url=stored.external_url,
            receiver=stored.receiver,
            group_key=stored.group_key,
        )

    @property
    def verdicts(self) -> list[Finding]:
        """Findings that carry a verdict, most important first."""
        return [f for f in self.findings if f.verdict is not None]
