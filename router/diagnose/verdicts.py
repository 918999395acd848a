"""Verdict rules: what the facts mean, and the runbook sub-section that applies.

A rule is true when its ``when`` expression holds over the facts of the checks
(``pods.oom_killed``); it then says, in one line, what it found, and points at a
runbook section: heading words looked up under the alert's runbook section
(``[oomkilled]``), or an explicit library ref (``rollback.md``). Verdicts come
ranked, the cause first. A rule that fails while evaluating becomes an info
finding, never a crash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from router.diagnose import templating
from router.diagnose.playbooks import VerdictRule
from router.library import RunbookLibrary, Section
from router.triage import Finding, RunbookExcerpt, RunbookLink, Verdict

SOURCE = "verdict"


@dataclass(frozen=True)
class RunbookPointers:
    """Resolves a verdict's ``runbook:`` pointer against the library, for one alert."""

    library: RunbookLibrary | None
    excerpt: RunbookExcerpt | None = None
    category: str | None = None

    def resolve(self, pointer: list[str] | str | None) -> RunbookLink | None:
        """The link to the section the pointer names; None when it cannot be found."""
        if pointer is None or self.library is None:
            return None
        if isinstance(pointer, str):
            section = self.library.get(pointer)
        else:
            section = self._subsection(pointer)
        return section.link() if section is not None else None

    def _subsection(self, words: list[str]) -> Section | None:
        """Under the alert's section, then its ancestors, then the category's best section."""
        assert self.library is not None
        for base in self._bases():
            found = self.library.find_subsection(base, words)
            if found is not None:
                return found
        return None

    def _bases(self) -> Iterable[Section]:
        assert self.library is not None
        link = self.excerpt.link if self.excerpt else None
        section = None
        if link is not None and link.path:
            ref = f"{link.path}#{link.anchor}" if link.anchor else link.path
            section = self.library.get(ref)
        if section is not None:
            yield section
            yield from section.ancestors()
        if self.category:
            best = self.library.best_for_category(self.category)
            if best is not None and best is not section:
                yield best


_ROLE_ORDER = {"cause": 0, "factor": 1, "symptom": 2}
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2, "ok": 3}


def evaluate_verdicts(
    rules: Iterable[VerdictRule], variables: Mapping[str, Any], pointers: RunbookPointers
) -> list[Finding]:
    """A finding for each rule that holds, ranked; failing rules become info findings after them.

    Ranked by role (cause, factor, symptom), then severity, then strength (how many
    checks corroborate it); playbook order breaks exact ties. A symptom whose
    ``explained_by`` rule holds names that cause.
    """
    held: list[tuple[VerdictRule, Finding]] = []
    failed = []
    for rule in rules:
        try:
            finding = _evaluate(rule, dict(variables), pointers)
        except templating.TemplateError as exc:
            title = f"verdict rule {rule.spec.id} failed: {exc}"
            failed.append(Finding(title=title, source=SOURCE, severity="info"))
            continue
        if finding is not None:
            held.append((rule, finding))
    _link_symptoms(held)
    held.sort(key=lambda pair: _rank(*pair))
    return [finding for _, finding in held] + failed


def _rank(rule: VerdictRule, finding: Finding) -> tuple[int, int, int]:
    return (
        _ROLE_ORDER[rule.spec.role],
        SEVERITY_ORDER.get(finding.severity, 9),
        -rule.strength,
    )


def _link_symptoms(held: list[tuple[VerdictRule, Finding]]) -> None:
    holding = {rule.spec.id for rule, _ in held}
    for rule, finding in held:
        cause = next((c for c in rule.spec.explained_by if c in holding), None)
        if cause is not None and finding.verdict is not None:
            finding.verdict.explained_by = cause


def _evaluate(
    rule: VerdictRule, variables: dict[str, Any], pointers: RunbookPointers
) -> Finding | None:
    if not templating.evaluate(rule.condition, variables):
        return None
    summary = templating.render(rule.say, variables) or rule.spec.id
    verdict = Verdict(
        summary=summary,
        rule=rule.spec.id,
        runbook=pointers.resolve(rule.spec.runbook),
        role=rule.spec.role,
    )
    return Finding(title=summary, source=SOURCE, severity=rule.spec.severity, verdict=verdict)
