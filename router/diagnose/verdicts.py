"""Verdict rules: what the facts mean, and the runbook sub-section that applies.

A rule is true when its ``when`` expression holds over the facts of the checks
(``pods.oom_killed``); it then says, in one line, what it found, and points at a
runbook section: heading words looked up under the alert's runbook section
(``[oomkilled]``), or an explicit library ref (``rollback.md``). A rule that fails
while evaluating becomes an info finding, never a crash.
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


def evaluate_verdicts(
    rules: Iterable[VerdictRule], variables: Mapping[str, Any], pointers: RunbookPointers
) -> list[Finding]:
    """A finding for each rule that holds, in rule order; failing rules become info findings."""
    findings = []
    for rule in rules:
        try:
            finding = _evaluate(rule, dict(variables), pointers)
        except templating.TemplateError as exc:
            finding = Finding(
                title=f"verdict rule {rule.spec.id} failed: {exc}", source=SOURCE, severity="info"
            )
        if finding is not None:
            findings.append(finding)
    return findings


def _evaluate(
    rule: VerdictRule, variables: dict[str, Any], pointers: RunbookPointers
) -> Finding | None:
    if not templating.evaluate(rule.condition, variables):
        return None
    summary = templating.render(rule.say, variables) or rule.spec.id
    verdict = Verdict(
        summary=summary, rule=rule.spec.id, runbook=pointers.resolve(rule.spec.runbook)
    )
    return Finding(title=summary, source=SOURCE, severity=rule.spec.severity, verdict=verdict)
