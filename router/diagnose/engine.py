"""The diagnostics engine: run a playbook's checks concurrently under one deadline.

Every check gets ``min(its timeout, time left before the alert's deadline)``. A
provider that is down, slow or unauthorised becomes a finding that says so; a
hung one is abandoned at the deadline while the other findings still arrive.
Then the playbook's verdict rules read the facts and add verdicts that point at
the runbook sub-section that applies. Everything that leaves is redacted.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from router.config import BUILTIN_PLAYBOOKS, Settings
from router.diagnose.base import AlertContext, Check, CheckOutcome, Provider, ProviderError
from router.diagnose.catalog import provider_title
from router.diagnose.planning import plan, template_variables
from router.diagnose.playbooks import Playbook, PlaybookSet, load_playbooks
from router.diagnose.verdicts import SEVERITY_ORDER, RunbookPointers, evaluate_verdicts
from router.library import RunbookLibrary
from router.redact import Redactor, secret_values
from router.triage import Diagnosis, Evidence, Finding, TriageResult

log = logging.getLogger("router.diagnose")

FALLBACK_PLAYBOOK = "generic"


class Diagnostics:
    """The pipeline's diagnose stage (``router.pipeline.Diagnoser``)."""

    def __init__(
        self,
        providers: Mapping[str, Provider],
        playbooks: PlaybookSet,
        library: RunbookLibrary | None = None,
        redactor: Redactor | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.providers = dict(providers)
        self.playbooks = playbooks
        self.library = library
        self.redactor = redactor or Redactor()
        self.clock = clock  # the same clock as ``deadline`` (time.monotonic)
        self.wall_clock = wall_clock

    async def diagnose(self, result: TriageResult, deadline: float) -> Diagnosis:
        """Findings for one alert (verdicts first, the cause first, then the evidence) and
        the names its checks found, the first check's where two found one."""
        playbook = self._playbook(result)
        if playbook is None:
            return Diagnosis()
        now = self.wall_clock()
        variables = template_variables(playbook, result, now)
        planned = plan(playbook, variables, self.providers)
        context = AlertContext(result.alert, result.classification, now, deadline)
        outcomes = await self._run_all(planned.checks, context)
        facts = {
            check.id: outcome.facts for check, outcome in zip(planned.checks, outcomes, strict=True)
        }
        pointers = RunbookPointers(self.library, result.runbook, result.classification.category)
        verdicts = evaluate_verdicts(playbook.verdicts, {**variables, **facts}, pointers)
        evidence = _merge_alike([f for outcome in outcomes for f in outcome.findings])
        findings = [*verdicts, *_ordered([*evidence, *planned.notes()])]
        names = {k: v for outcome in reversed(outcomes) for k, v in outcome.names.items() if v}
        return Diagnosis(findings=[self._redacted(f) for f in findings], names=names)

    def _playbook(self, result: TriageResult) -> Playbook | None:
        wanted = result.classification.playbook or result.classification.category
        return self.playbooks.get(wanted) or self.playbooks.get(FALLBACK_PLAYBOOK)

    async def _run_all(self, checks: Sequence[Check], context: AlertContext) -> list[CheckOutcome]:
        """Run every check at once; whatever has not answered by the deadline is abandoned."""
        if not checks:
            return []
        budgets = [self._budget(check, context.deadline) for check in checks]
        tasks = [
            asyncio.ensure_future(self._run(check, context, budget))
            for check, budget in zip(checks, budgets, strict=True)
        ]
        _, pending = await asyncio.wait(tasks, timeout=self._left(context.deadline))
        for task in pending:  # a provider that is slow to cancel is not waited for
            task.cancel()
            task.add_done_callback(_discard)
        return [
            _timed_out(check, budget) if task in pending else task.result()
            for check, budget, task in zip(checks, budgets, tasks, strict=True)
        ]

    async def _run(self, check: Check, context: AlertContext, budget: float) -> CheckOutcome:
        provider = self.providers[check.provider]
        try:
            outcome = await asyncio.wait_for(provider.run(check, context), timeout=budget)
        except TimeoutError:
            return _timed_out(check, budget)
        except ProviderError as exc:
            return _failed(check, str(exc) or f"{provider_title(check.provider)}: failed")
        except Exception as exc:
            log.exception("check %s (%s/%s) crashed", check.id, check.provider, check.kind)
            return _failed(check, f"{check.provider}/{check.kind} crashed: {type(exc).__name__}")
        return outcome if isinstance(outcome, CheckOutcome) else CheckOutcome()

    def _budget(self, check: Check, deadline: float) -> float:
        return min(check.timeout or math.inf, self._left(deadline))

    def _left(self, deadline: float) -> float:
        return max(0.0, deadline - self.clock())

    def _redacted(self, finding: Finding) -> Finding:
        return Finding.model_validate(self.redactor.value(finding.model_dump(mode="json")))


def build_diagnostics(
    settings: Settings,
    playbooks: PlaybookSet,
    library: RunbookLibrary | None,
    providers: Mapping[str, Provider],
) -> Diagnostics:
    """The engine for these settings, over playbooks loaded once (``configured_playbooks``)."""
    return Diagnostics(providers, playbooks, library, Redactor(secret_values(settings)))


def configured_playbooks(settings: Settings) -> PlaybookSet:
    """The built-in playbooks, then ``settings.playbooks`` over them; raises ConfigError."""
    return load_playbooks(with_builtins(settings.playbooks))


def with_builtins(paths: Iterable[Path]) -> list[Path]:
    """The built-in playbooks first, then the configured ones (which override by name)."""
    builtin = BUILTIN_PLAYBOOKS.resolve()
    rest = [Path(p) for p in paths if Path(p).resolve() != builtin]
    return [BUILTIN_PLAYBOOKS, *rest]


def _timed_out(check: Check, budget: float) -> CheckOutcome:
    title = f"{provider_title(check.provider)}: timed out after {_seconds(budget)} s"
    return _failed(check, title)


def _failed(check: Check, title: str) -> CheckOutcome:
    """A provider that could not answer: a warning naming the check it was running."""
    what = Evidence(
        kind="text", label="check", text=f"{check.title} ({check.provider}/{check.kind})"
    )
    return CheckOutcome(
        [Finding(title=title, source=check.provider, severity="warning", evidence=[what])]
    )


def _merge_alike(findings: list[Finding]) -> list[Finding]:
    """One finding for the same failure of several checks ("Kubernetes API: 401 Unauthorized")."""
    merged: dict[tuple[str, str, str], Finding] = {}
    out: list[Finding] = []
    for finding in findings:
        key = (finding.title, finding.source, finding.severity)
        first = merged.get(key)
        if first is None or finding.verdict or first.verdict:
            merged.setdefault(key, finding)
            out.append(finding)
            continue
        first.evidence = [*first.evidence, *finding.evidence]
    return out


def _ordered(findings: list[Finding]) -> list[Finding]:
    """Most severe first; stable within a severity."""
    return sorted(findings, key=lambda f: SEVERITY_ORDER.get(f.severity, 9))


def _seconds(value: float) -> str:
    """``3.0`` → ``3``, ``0.4999`` → ``0.5``."""
    return f"{value:.1f}".removesuffix(".0")


def _discard(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("an abandoned check failed late: %r", task.exception())
