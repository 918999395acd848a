"""The pipeline: classify → find runbook → diagnose → render → deliver.

Each stage is a small interface; :class:`Pipeline` runs the first three for one
alert state and turns the result into deliveries, one list per sink. Delivery
itself happens later, from the durable outbox (``router.outbox``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from router.alerts import Alert
from router.delivery import SETTLES, Delivery
from router.placeholders import ready_to_paste
from router.retriage_request import RetriageRequest
from router.triage import (
    AlertHistory,
    Classification,
    Diagnosis,
    Finding,
    RunbookExcerpt,
    RunbookLink,
    TriageResult,
)

log = logging.getLogger("router")

__all__ = ["SETTLES", "Delivery", "Pipeline", "Sink"]


class RunbookSection(Protocol):
    """One indexed runbook section, as the classifier and the pipeline see it."""

    path: str
    anchor: str
    title: str
    category: str | None

    def link(self) -> RunbookLink: ...


class RunbookIndex(Protocol):
    """The runbook library, as the other stages query it."""

    def declared(self, alertname: str) -> RunbookSection | None:
        """The section that declares this alert name, if any."""

    def from_url(self, url: str) -> RunbookSection | None:
        """The section a ``runbook_url`` annotation points at, when it is in the library."""

    def get(self, ref: str) -> RunbookSection | None:
        """The section named by ``path#anchor`` (or ``path`` for a whole file)."""

    def excerpt(self, section: RunbookSection) -> RunbookExcerpt:
        """The section's markdown with its sub-sections and resolved cross-links."""


class Classifier(Protocol):
    def classify(self, alert: Alert) -> Classification: ...


class RunbookFinder(Protocol):
    def find(self, alert: Alert, classification: Classification) -> RunbookExcerpt | None: ...


class HistorySource(Protocol):
    async def of(self, alert: Alert) -> AlertHistory | None:
        """What the store knows about this alert's earlier firings (``router.store.history``)."""


class Diagnoser(Protocol):
    async def diagnose(self, result: TriageResult, deadline: float) -> Diagnosis:
        """Findings for this alert; must return by ``deadline`` (a ``time.monotonic()`` value)."""


class Sink(Protocol):
    """A destination: renders a triage result, then sends what it rendered."""

    name: str

    def render(self, result: TriageResult) -> list[Delivery]: ...

    async def send(self, delivery: Delivery) -> dict[str, Any] | None:
        """Make the remote call; raise :class:`router.delivery.DeliveryError` on failure."""

    async def already_delivered(self, delivery: Delivery) -> bool:
        """Whether an attempt interrupted by a crash got through (checked before re-sending)."""

    async def retriage(
        self, result: TriageResult, request: RetriageRequest, *, rerun: bool
    ) -> list[Delivery]:
        """Deliveries of a re-run's findings (``rerun``: fresh; else reused) for ``request``."""

    def retriage_failed(self, request: RetriageRequest, reason: str) -> list[Delivery]:
        """Deliveries that tell whoever asked that the re-run failed (``reason``: plain text)."""

    async def aclose(self) -> None:
        """Release clients and flush what is pending; called once on shutdown."""


@dataclass
class Pipeline:
    """Runs the stages for one alert state; holds no mutable state of its own."""

    classifier: Classifier
    runbooks: RunbookFinder
    diagnoser: Diagnoser
    sinks: list[Sink]
    deadline_seconds: float = 10.0
    history: HistorySource | None = None

    async def triage(self, result: TriageResult) -> TriageResult:
        """Classify, attach the runbook section and diagnose, under one deadline."""
        return await self.diagnose(self.prepare(result))

    def prepare(self, result: TriageResult) -> TriageResult:
        """Classify and attach the runbook section (CPU only: no I/O, no awaiting)."""
        classification = self.classifier.classify(result.alert)
        runbook = self.runbooks.find(result.alert, classification)
        return result.model_copy(update={"classification": classification, "runbook": runbook})

    async def diagnose(self, result: TriageResult) -> TriageResult:
        """Run the diagnostics for a prepared result, under one deadline, then fill the
        runbook's commands from the alert's labels and the names the diagnostics found."""
        deadline = time.monotonic() + self.deadline_seconds
        history = await self._history(result.alert)
        try:
            diagnosis = await asyncio.wait_for(
                self.diagnoser.diagnose(result, deadline), timeout=self.deadline_seconds + 1
            )
        except TimeoutError:
            late = f"Diagnostics did not finish within {self.deadline_seconds:g} s"
            diagnosis = Diagnosis(
                findings=[Finding(title=late, source="router", severity="warning")]
            )
        runbook = result.runbook and ready_to_paste(
            result.runbook, result.alert.labels, diagnosis.names
        )
        update = {"findings": diagnosis.findings, "history": history, "runbook": runbook}
        return result.model_copy(update=update)

    async def _history(self, alert: Alert) -> AlertHistory | None:
        """The alert's history; a store that cannot answer only leaves it out."""
        if self.history is None:
            return None
        try:
            return await self.history.of(alert)
        except Exception as exc:
            log.warning("cannot read the history of %s: %s", alert.alertname, exc)
            return None

    def render(self, result: TriageResult) -> list[Delivery]:
        """Every sink's deliveries for this result, in sink order."""
        return [d for sink in self.sinks for d in sink.render(result)]
