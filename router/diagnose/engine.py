"""The diagnostics engine: run a playbook's checks concurrently under one deadline.

Every check gets ``min(its timeout, time left before the alert's deadline)``. A
provider that is down, slow or unauthorised becomes a finding that says so; a
hung one is cancelled at the deadline while the other findings still arrive.
Then the playbook's verdict rules read the facts and add verdicts that point at
the runbook sub-section that applies.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from router.diagnose import templating
from router.diagnose.base import AlertContext, Check, CheckOutcome, Provider, ProviderError
from router.diagnose.playbooks import PlannedCheck, Playbook, PlaybookSet, VerdictRule
from router.redact import Redactor
from router.triage import Evidence, Finding, RunbookLink, TriageResult, Verdict

log = logging.getLogger("router.diagnose")

FALLBACK_PLAYBOOK = "generic"
_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2, "ok": 3}
PROVIDER_NAMES = {
    "prometheus": "Prometheus",
    "kubernetes": "Kubernetes API",
    "postgres": "PostgreSQL",
    "http": "HTTP probe",
}


@dataclass
class Diagnostics:
    """The pipeline's diagnose stage (``router.pipeline.Diagnoser``)."""

    providers: Mapping[str, Provider]
    playbooks: PlaybookSet
    library: Any | None = None  # router.library.RunbookLibrary, to resolve verdict pointers
    redactor: Redactor | None = None

    async def diagnose(self, result: TriageResult, deadline: float) -> list[Finding]:
        playbook = self.playbooks.get(result.classification.playbook) or self.playbooks.get(
            FALLBACK_PLAYBOOK
        )
        if playbook is None:
            return []
        context = AlertContext(result.alert, result.classification, datetime.now(UTC), deadline)
        variables = _template_variables(result, context.now)
        runnable, notes = self._plan(playbook, variables)
        outcomes = await asyncio.gather(*(self._run(check, context) for check in runnable))
        facts = {check.id: outcome.facts for check, outcome in zip(runnable, outcomes, strict=True)}
        verdicts = self._verdicts(playbook, {**variables, **facts}, result)
        findings = [*verdicts, *(f for outcome in outcomes for f in outcome.findings), *notes]
        return [self._redacted(f) for f in _ordered(findings)]

    def _plan(
        self, playbook: Playbook, variables: dict[str, Any]
    ) -> tuple[list[Check], list[Finding]]:
        checks, skipped, missing = [], [], set()
        for planned in playbook.checks:
            spec = planned.spec
            if spec.provider not in self.providers:
                missing.add(PROVIDER_NAMES.get(spec.provider, spec.provider))
                continue
            try:
                params = _render(planned, variables)
            except templating.TemplateError as exc:
                skipped.append(f"{spec.provider}/{spec.kind} ({spec.id}): {exc}")
                continue
            absent = [name for name in spec.requires if params.get(name) in ("", None, [])]
            if absent:
                skipped.append(f"{spec.provider}/{spec.kind} ({spec.id}): no {', '.join(absent)}")
                continue
            checks.append(
                Check(spec.id, spec.provider, spec.kind, spec.title, params, spec.timeout)
            )
        notes = []
        if skipped:
            notes.append(_note("Skipped checks: the alert lacks the labels they need", skipped))
        if missing:
            notes.append(
                Finding(
                    title=f"Not checked (not configured): {', '.join(sorted(missing))}",
                    source="router",
                )
            )
        return checks, notes

    async def _run(self, check: Check, context: AlertContext) -> CheckOutcome:
        provider = self.providers[check.provider]
        name = PROVIDER_NAMES.get(check.provider, check.provider)
        budget = min(check.timeout or float("inf"), context.remaining())
        try:
            return await asyncio.wait_for(provider.run(check, context), timeout=budget)
        except TimeoutError:
            return _failure(check, f"{name}: timed out after {budget:.3g} s", "warning")
        except ProviderError as exc:
            return _failure(check, str(exc), "warning")
        except Exception as exc:
            log.exception("%s/%s crashed", check.provider, check.kind)
            return _failure(
                check, f"{check.provider}/{check.kind} crashed: {type(exc).__name__}", "warning"
            )

    def _verdicts(
        self, playbook: Playbook, variables: dict[str, Any], result: TriageResult
    ) -> list[Finding]:
        findings = []
        for rule in playbook.verdicts:
            try:
                if not templating.evaluate(rule.condition, variables):
                    continue
                summary = templating.render(rule.say, variables)
            except templating.TemplateError as exc:
                findings.append(
                    Finding(title=f"verdict rule {rule.spec.id} failed: {exc}", source="router")
                )
                continue
            verdict = Verdict(
                summary=summary, rule=rule.spec.id, runbook=self._pointer(rule, result)
            )
            findings.append(
                Finding(
                    title=summary, source="verdict", severity=rule.spec.severity, verdict=verdict
                )
            )
        return findings

    def _pointer(self, rule: VerdictRule, result: TriageResult) -> RunbookLink | None:
        """The runbook sub-section a verdict points at: heading words, or a library ref."""
        pointer, library = rule.spec.runbook, self.library
        if pointer is None or library is None:
            return None
        if isinstance(pointer, str):
            section = library.get(pointer)
        else:
            anchor = result.runbook.link if result.runbook else None
            base = library.get(f"{anchor.path}#{anchor.anchor}") if anchor and anchor.path else None
            section = library.find_subsection(base, pointer) if base else None
        return section.link() if section else None

    def _redacted(self, finding: Finding) -> Finding:
        if self.redactor is None:
            return finding
        return Finding.model_validate(self.redactor.value(finding.model_dump(mode="json")))


def _template_variables(result: TriageResult, now: datetime) -> dict[str, Any]:
    alert = result.alert
    return {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "alert": {
            "alertname": alert.alertname,
            "status": alert.status,
            "fingerprint": alert.fingerprint,
            "starts_at": alert.startsAt.isoformat(),
        },
        "category": result.classification.category,
        "now": now.isoformat(),
    }


def _render(planned: PlannedCheck, variables: dict[str, Any]) -> dict[str, Any]:
    def render(value: Any) -> Any:
        if isinstance(value, list):
            return [render(v) for v in value]
        if isinstance(value, dict):
            return {k: render(v) for k, v in value.items()}
        if hasattr(value, "render"):
            return templating.render(value, variables)
        return value

    return {key: render(value) for key, value in planned.params.items()}


def _failure(check: Check, message: str, severity: str) -> CheckOutcome:
    return CheckOutcome(findings=[Finding(title=message, source=check.provider, severity=severity)])


def _note(title: str, lines: list[str]) -> Finding:
    return Finding(
        title=title, source="router", evidence=[Evidence(kind="text", text="\n".join(lines))]
    )


def _ordered(findings: list[Finding]) -> list[Finding]:
    """Verdicts first, then by severity; stable within each group."""
    return sorted(findings, key=lambda f: (f.verdict is None, _SEVERITY_ORDER.get(f.severity, 9)))
