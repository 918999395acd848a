"""The order every destination shows findings in: those with a verdict first."""

from __future__ import annotations

from collections.abc import Iterable

from router.triage import Finding


def verdicts_first(findings: Iterable[Finding]) -> list[Finding]:
    """Findings with a verdict first, otherwise in the order the providers gave them."""
    return sorted(findings, key=lambda f: f.verdict is None)
