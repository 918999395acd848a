"""Turning a playbook into the checks to run for one alert, and saying what was left out.

Each check's parameters are rendered from the alert; a check whose required
parameters render empty is skipped, and so is one whose provider is not
configured. Both are reported, in one finding each, so nobody mistakes
"not checked" for "checked and fine".
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jinja2.environment import Template

from router.diagnose import templating
from router.diagnose.base import Check
from router.diagnose.catalog import provider_title
from router.diagnose.playbooks import PlannedCheck, Playbook
from router.triage import Evidence, Finding, TriageResult

log = logging.getLogger("router.diagnose")

SOURCE = "router"


@dataclass
class Plan:
    """The checks to run, and the notes about those that will not run."""

    checks: list[Check] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (check, why)
    unconfigured: list[str] = field(default_factory=list)  # provider names

    def notes(self) -> list[Finding]:
        notes = []
        if self.skipped:
            notes.append(_skipped_note(self.skipped))
        if self.unconfigured:
            names = ", ".join(provider_title(p) for p in self.unconfigured)
            notes.append(Finding(title=f"Not checked: {names} (not configured)", source=SOURCE))
        return notes


def template_variables(playbook: Playbook, result: TriageResult, now: datetime) -> dict[str, Any]:
    """What params, conditions and verdict texts may read besides the facts."""
    alert = result.alert
    variables: dict[str, Any] = {
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
    variables["vars"] = _render_vars(playbook.vars, variables)
    return variables


def _render_vars(templates: dict[str, Any], variables: dict[str, Any]) -> dict[str, Any]:
    """The playbook's ``vars``; one that fails to render is left out (and logged)."""
    rendered: dict[str, Any] = {}
    for key, value in templates.items():
        try:
            rendered[key] = _render(value, {**variables, "vars": dict(rendered)})
        except templating.TemplateError as exc:
            log.warning("playbook variable %s failed to render: %s", key, exc)
    return rendered


def plan(playbook: Playbook, variables: dict[str, Any], configured: Collection[str]) -> Plan:
    """Render every check's params; keep those that can run."""
    out = Plan()
    for planned in playbook.checks:
        spec = planned.spec
        if spec.provider not in configured:
            if spec.provider not in out.unconfigured:
                out.unconfigured.append(spec.provider)
            continue
        try:
            params = render_params(planned.params, variables)
        except templating.TemplateError as exc:
            out.skipped.append((_label(planned), f"its parameters failed to render ({exc})"))
            continue
        absent = [name for name in spec.requires if params.get(name) in ("", None, [], {})]
        if absent:
            out.skipped.append((_label(planned), _why_absent(planned, absent)))
            continue
        title = spec.title or f"{spec.provider}/{spec.kind}"
        out.checks.append(Check(spec.id, spec.provider, spec.kind, title, params, spec.timeout))
    return out


def render_params(params: dict[str, Any], variables: dict[str, Any]) -> dict[str, Any]:
    """Render in order; each parameter sees the ones before it as ``params``."""
    rendered: dict[str, Any] = {}
    for key, value in params.items():
        rendered[key] = _render(value, {**variables, "params": dict(rendered)})
    return rendered


def _render(value: Any, variables: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_render(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: _render(v, variables) for k, v in value.items()}
    if isinstance(value, Template):
        return templating.render_param(value, variables)
    return value


def _label(planned: PlannedCheck) -> str:
    spec = planned.spec
    name = f"{spec.provider}/{spec.kind}"
    return name if spec.id == spec.kind else f"{name} ({spec.id})"


def _why_absent(planned: PlannedCheck, absent: list[str]) -> str:
    """``the alert has no namespace label and no deployment or service label``."""
    parts = []
    for name in absent:
        source = planned.spec.params.get(name)
        labels = templating.attributes_of(source, "labels") if isinstance(source, str) else []
        notes = templating.attributes_of(source, "annotations") if isinstance(source, str) else []
        if labels:
            parts.append(f"no {' or '.join(labels)} label")
        elif notes:
            parts.append(f"no {' or '.join(notes)} annotation")
        else:
            parts.append(f"no {name}")
    return "the alert has " + " and ".join(dict.fromkeys(parts))


def _skipped_note(skipped: list[tuple[str, str]]) -> Finding:
    by_reason: dict[str, list[str]] = {}
    for check, why in skipped:
        by_reason.setdefault(why, []).append(check)
    if len(by_reason) == 1:
        ((why, checks),) = by_reason.items()
        return Finding(title=f"Skipped {', '.join(checks)}: {why}", source=SOURCE)
    lines = [f"{', '.join(checks)}: {why}" for why, checks in by_reason.items()]
    return Finding(
        title=f"Skipped {len(skipped)} checks: the alert lacks what they need",
        source=SOURCE,
        evidence=[Evidence(kind="text", text="\n".join(lines))],
    )
