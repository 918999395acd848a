"""Playbooks: which checks to run for a category, and the verdict rules over their facts.

One YAML file per playbook (the built-in ones are in ``playbooks/``; the
``playbooks:`` setting adds files or folders, later ones overriding same-named
playbooks)::

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
        role: cause                  # cause | factor (default) | symptom: ranks the verdicts
        say: "{{ pods.oom_killed | join(', ') }} ran out of memory"
        runbook: [oomkilled]         # heading words of the sub-section, or "path#anchor"
        # explained_by: [other-id]   # a symptom names the cause rule that holds with it

Every rule must stay silent when no check has data (a provider down): one that fails
or holds against empty facts is refused at load, at its file and line.

Templates read ``labels``, ``annotations``, ``alert`` (alertname, status,
fingerprint, starts_at), ``category``, ``now`` and ``vars``: the playbook's own
``vars:`` mapping, rendered first (``pool_size: "{{ annotations.pool_size or 20 }}"``).
A check's parameters are rendered in order; a later one may read an earlier one
as ``params.<name>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from jinja2.environment import Template
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from router.diagnose import templating
from router.diagnose.catalog import KNOWN_KINDS
from router.triage import VerdictRole
from router.yamlfile import ConfigError, Locator, collect, format_loc, load_yaml, raise_if_any

# What templates may read besides check facts (see ``engine.template_variables``).
TEMPLATE_VARIABLES = frozenset({"labels", "annotations", "alert", "category", "now", "vars"})
_JINJA_GLOBALS = frozenset(
    {"range", "dict", "lipsum", "cycler", "joiner", "namespace", "true", "false", "none"}
)
_ID = r"^[a-z_][a-z0-9_]*$"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CheckSpec(_Spec):
    id: str = Field(pattern=_ID)
    provider: str
    kind: str
    title: str = ""
    requires: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    timeout: float | None = Field(default=None, gt=0)


class VerdictSpec(_Spec):
    id: str = Field(min_length=1)
    when: str = Field(min_length=1)
    say: str = Field(min_length=1)
    severity: Literal["critical", "warning", "info", "ok"] = "warning"
    role: VerdictRole = "factor"
    explained_by: list[str] = Field(default_factory=list)
    runbook: list[str] | str | None = None


class PlaybookSpec(_Spec):
    name: str = Field(min_length=1)
    description: str = ""
    vars: dict[str, Any] = Field(default_factory=dict)
    checks: list[CheckSpec] = Field(default_factory=list)
    verdicts: list[VerdictSpec] = Field(default_factory=list)


@dataclass(frozen=True)
class PlannedCheck:
    """A check with its parameter templates compiled, rendered per alert."""

    spec: CheckSpec
    params: dict[str, Any]


@dataclass(frozen=True)
class VerdictRule:
    """A verdict rule with its condition and text compiled.

    ``strength`` is how many checks its condition reads: a verdict several checks
    corroborate outranks one of the same role and severity that rests on one.
    """

    spec: VerdictSpec
    condition: Any
    say: Template
    strength: int


@dataclass(frozen=True)
class Playbook:
    name: str
    description: str
    vars: dict[str, Any]  # compiled, rendered per alert before the checks
    checks: tuple[PlannedCheck, ...]
    verdicts: tuple[VerdictRule, ...]
    source: Path


@dataclass(frozen=True)
class PlaybookSet:
    """The loaded playbooks by name."""

    playbooks: Mapping[str, Playbook]

    def names(self) -> list[str]:
        return sorted(self.playbooks)

    def get(self, name: str | None) -> Playbook | None:
        return self.playbooks.get(name or "")


def load_playbooks(
    paths: Iterable[Path], known_providers: Mapping[str, frozenset[str]] = KNOWN_KINDS
) -> PlaybookSet:
    """Load every playbook file; a later file overrides an earlier one of the same name.

    Raises :class:`ConfigError` naming the file and line of every problem.
    """
    found: dict[str, Playbook] = {}
    problems: list[ConfigError] = []
    for path in _playbook_files(paths):
        playbook = collect(problems, lambda path=path: _load_one(path, known_providers))
        if playbook is not None:
            found[playbook.name] = playbook
    raise_if_any(problems)
    return PlaybookSet(found)


def _playbook_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(path, None, "no such playbook file or folder")
    return files


def _load_one(path: Path, known_providers: Mapping[str, frozenset[str]]) -> Playbook:
    data, locator = load_yaml(path)
    try:
        spec = PlaybookSpec.model_validate(data)
    except ValidationError as exc:
        raise locator.validation_error(exc) from None
    variables = {k: _compile_param(v, locator, ("vars", k)) for k, v in spec.vars.items()}
    checks = tuple(_check(spec, i, locator, known_providers) for i in range(len(spec.checks)))
    ids = {c.spec.id for c in checks}
    verdicts = tuple(_verdict(spec, i, locator, ids) for i in range(len(spec.verdicts)))
    rule_ids = {v.spec.id for v in verdicts}
    for index, rule in enumerate(verdicts):
        for cause in rule.spec.explained_by:
            if cause not in rule_ids or cause == rule.spec.id:
                at = ("verdicts", index, "explained_by")
                raise locator.error(at, f"explained_by names no other verdict rule: {cause!r}")
    return Playbook(spec.name, spec.description, variables, checks, verdicts, path)


def _check(
    spec: PlaybookSpec, index: int, locator: Locator, known: Mapping[str, frozenset[str]]
) -> PlannedCheck:
    check, at = spec.checks[index], ("checks", index)
    if check.provider not in known:
        names = ", ".join(sorted(known))
        raise locator.error((*at, "provider"), f"unknown provider {check.provider!r} ({names})")
    if check.kind not in known[check.provider]:
        kinds = ", ".join(sorted(known[check.provider]))
        raise locator.error(
            (*at, "kind"), f"{check.provider} has no check {check.kind!r} ({kinds})"
        )
    if check.id in TEMPLATE_VARIABLES:
        raise locator.error((*at, "id"), f"check id {check.id!r} is reserved for templates")
    if any(other.id == check.id for other in spec.checks[:index]):
        raise locator.error((*at, "id"), f"duplicate check id {check.id!r}")
    for name in check.requires:
        if name not in check.params:
            raise locator.error((*at, "requires"), f"requires {name!r}, which is not a param")
    params = {}
    for key, value in check.params.items():
        params[key] = _compile_param(value, locator, (*at, "params", key))
    return PlannedCheck(check, params)


def _compile_param(value: Any, locator: Locator, loc: tuple[str | int, ...]) -> Any:
    if isinstance(value, list):
        return [_compile_param(v, locator, (*loc, i)) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _compile_param(v, locator, (*loc, k)) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    template = _compiled(templating.compile_param, value, locator, loc)
    _known_names(templating.names_in(value), TEMPLATE_VARIABLES | {"params"}, locator, loc)
    return template


def _verdict(spec: PlaybookSpec, index: int, locator: Locator, check_ids: set[str]) -> VerdictRule:
    rule, at = spec.verdicts[index], ("verdicts", index)
    if any(other.id == rule.id for other in spec.verdicts[:index]):
        raise locator.error((*at, "id"), f"duplicate verdict id {rule.id!r}")
    condition = _compiled(templating.compile_condition, rule.when, locator, (*at, "when"))
    say = _compiled(templating.compile_template, rule.say, locator, (*at, "say"))
    known = check_ids | TEMPLATE_VARIABLES
    _known_names(templating.names_in(rule.when, expression=True), known, locator, (*at, "when"))
    _known_names(templating.names_in(rule.say), known, locator, (*at, "say"))
    _holds_without_data(condition, check_ids, locator, (*at, "when"))
    strength = len(templating.names_in(rule.when, expression=True) & check_ids)
    return VerdictRule(rule, condition, say, strength)


def _holds_without_data(
    condition: Any, check_ids: set[str], locator: Locator, loc: tuple[str | int, ...]
) -> None:
    """A rule must stay silent when no check answered (every provider down), not fail or fire."""
    empty: dict[str, Any] = {name: {} for name in (*check_ids, *TEMPLATE_VARIABLES)}
    empty |= {"category": "", "now": ""}
    try:
        holds = templating.evaluate(condition, empty)
    except templating.TemplateError as exc:
        raise locator.error(loc, f"{_where(loc)} fails when a check has no data: {exc}") from None
    if holds:
        raise locator.error(loc, f"{_where(loc)} holds when no check has data: a false alarm")


def _compiled(compiler: Any, source: str, locator: Locator, loc: tuple[str | int, ...]) -> Any:
    try:
        return compiler(source)
    except templating.TemplateError as exc:
        raise locator.error(loc, f"{_where(loc)}: {exc}") from None


def _known_names(
    used: set[str], known: frozenset[str] | set[str], locator: Locator, loc: tuple[str | int, ...]
) -> None:
    unknown = sorted(used - known - _JINJA_GLOBALS)
    if unknown:
        raise locator.error(
            loc, f"{_where(loc)} reads unknown check id(s) or variable(s): {', '.join(unknown)}"
        )


def _where(loc: tuple[str | int, ...]) -> str:
    return format_loc(loc)
