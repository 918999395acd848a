"""Playbooks: which checks to run for a category, and the verdict rules over their facts.

One YAML file per playbook (``playbooks/*.yaml``; the ``playbooks:`` setting adds
folders whose files override same-named built-in ones)::

    name: crashloop
    checks:
      - id: pods                     # its facts are ``pods.<fact>`` in verdict rules
        provider: kubernetes
        kind: pods
        title: Restarting containers
        requires: [namespace]        # skipped, visibly, when these render empty
        params: {namespace: "{{ labels.namespace }}", pod: "{{ labels.pod }}"}
    verdicts:
      - id: oom-killed
        when: "pods.oom_killed"      # a sandboxed Jinja2 expression over the facts
        severity: critical
        say: "{{ pods.oom_killed | join(', ') }} ran out of memory"
        runbook: [oomkilled]         # heading words of the sub-section, or a "path#anchor"
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from router.diagnose import templating
from router.yamlfile import ConfigError, Locator, load_yaml

# The check kinds each provider runs; playbooks are validated against this table.
KNOWN_KINDS: dict[str, frozenset[str]] = {
    "prometheus": frozenset({"query", "range", "alert_expression"}),
    "http": frozenset({"probe"}),
    "kubernetes": frozenset({"pods", "events", "logs", "rollout", "hpa"}),
    "postgres": frozenset({"connections", "long_queries", "locks", "ping"}),
}
TEMPLATE_VARIABLES = frozenset({"labels", "annotations", "alert", "category", "now"})


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CheckSpec(_Spec):
    id: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    provider: str
    kind: str
    title: str = ""
    requires: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    timeout: float | None = Field(default=None, gt=0)


class VerdictSpec(_Spec):
    id: str
    when: str
    say: str
    severity: Literal["critical", "warning", "info"] = "warning"
    runbook: list[str] | str | None = None


class PlaybookSpec(_Spec):
    name: str
    description: str = ""
    checks: list[CheckSpec] = Field(default_factory=list)
    verdicts: list[VerdictSpec] = Field(default_factory=list)


@dataclass(frozen=True)
class PlannedCheck:
    spec: CheckSpec
    params: dict[str, Any]  # templates compiled, rendered per alert


@dataclass(frozen=True)
class VerdictRule:
    spec: VerdictSpec
    condition: Any
    say: Any


@dataclass(frozen=True)
class Playbook:
    name: str
    description: str
    checks: tuple[PlannedCheck, ...]
    verdicts: tuple[VerdictRule, ...]
    source: Path


@dataclass(frozen=True)
class PlaybookSet:
    playbooks: Mapping[str, Playbook]

    def names(self) -> list[str]:
        return sorted(self.playbooks)

    def get(self, name: str | None) -> Playbook | None:
        return self.playbooks.get(name or "")


def load_playbooks(
    paths: Iterable[Path], known_kinds: Mapping[str, frozenset[str]] = KNOWN_KINDS
) -> PlaybookSet:
    """Load every playbook file; a later file overrides an earlier one of the same name."""
    found: dict[str, Playbook] = {}
    for path in _playbook_files(paths):
        playbook = _load_one(path, known_kinds)
        found[playbook.name] = playbook
    return PlaybookSet(found)


def _playbook_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(path, None, "no such playbook file or folder")
    return files


def _load_one(path: Path, known_kinds: Mapping[str, frozenset[str]]) -> Playbook:
    data, locator = load_yaml(path)
    try:
        spec = PlaybookSpec.model_validate(data)
    except ValidationError as exc:
        raise locator.validation_error(exc) from None
    checks = tuple(_plan_check(spec, i, locator, known_kinds) for i in range(len(spec.checks)))
    check_ids = {c.spec.id for c in checks}
    verdicts = tuple(_verdict(v, i, locator, check_ids) for i, v in enumerate(spec.verdicts))
    return Playbook(spec.name, spec.description, checks, verdicts, path)


def _plan_check(
    spec: PlaybookSpec, index: int, locator: Locator, known_kinds: Mapping[str, frozenset[str]]
) -> PlannedCheck:
    check = spec.checks[index]
    at = ("checks", index)
    if check.provider not in known_kinds:
        known = ", ".join(sorted(known_kinds))
        raise locator.error((*at, "provider"), f"unknown provider {check.provider!r} ({known})")
    if check.kind not in known_kinds[check.provider]:
        kinds = ", ".join(sorted(known_kinds[check.provider]))
        raise locator.error(
            (*at, "kind"), f"{check.provider} has no check {check.kind!r} ({kinds})"
        )
    if any(other.id == check.id for other in spec.checks[:index]):
        raise locator.error((*at, "id"), f"duplicate check id {check.id!r}")
    try:
        params = {key: _compile_value(value) for key, value in check.params.items()}
    except templating.TemplateError as exc:
        raise locator.error((*at, "params"), str(exc)) from None
    return PlannedCheck(check, params)


def _compile_value(value: Any) -> Any:
    if isinstance(value, str):
        return templating.compile_template(value)
    if isinstance(value, list):
        return [_compile_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _compile_value(v) for k, v in value.items()}
    return value


def _verdict(spec: VerdictSpec, index: int, locator: Locator, check_ids: set[str]) -> VerdictRule:
    at = ("verdicts", index)
    try:
        condition = templating.compile_condition(spec.when)
        say = templating.compile_template(spec.say)
    except templating.TemplateError as exc:
        raise locator.error(at, f"verdict {spec.id!r}: {exc}") from None
    known = check_ids | TEMPLATE_VARIABLES
    used = templating.names_in(spec.when, expression=True) | templating.names_in(spec.say)
    unknown = sorted(used - known - _JINJA_GLOBALS)
    if unknown:
        raise locator.error(
            (*at, "when"), f"verdict {spec.id!r} reads unknown check id(s): {', '.join(unknown)}"
        )
    return VerdictRule(spec, condition, say)


_JINJA_GLOBALS = frozenset(
    {"range", "dict", "lipsum", "cycler", "joiner", "namespace", "true", "false", "none"}
)
