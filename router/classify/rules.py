"""Classification rules: YAML files of Alertmanager matchers → category and routing.

``load_rules(paths)`` reads files and folders (every ``*.yaml``/``*.yml``, sorted),
validates them and returns a :class:`RuleSet`; rules are tried in order and the
first match wins. Every problem is a :class:`ConfigError` with the file and line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from router.classify.matchers import (
    Matcher,
    MatcherError,
    matches_all,
    parse_matcher,
    parse_matchers,
)
from router.config import PROJECT_ROOT
from router.pipeline import RunbookIndex
from router.triage import BUILTIN_CATEGORIES, UNCLASSIFIED, Routing
from router.yamlfile import ConfigError, Locator, collect, load_yaml, raise_if_any

M = TypeVar("M", bound=BaseModel)
GENERIC_PLAYBOOK = "generic"
NAME_PATTERN = r"^[a-z][a-z0-9_-]*$"
PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")
_RUNBOOK_REF = re.compile(r"^(https?://\S+|[^\s#]+(#[^\s#]+)?)$")


class CategorySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""


class RoutingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slack_channel: str | None = Field(default=None, pattern=r"^[#@]?[\w.-]+$")
    pagerduty_routing_key: str | None = Field(default=None, pattern=r"^[\w.-]+$")
    pagerduty_severity: dict[str, str] = Field(default_factory=dict)


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    matchers: list[str] = Field(min_length=1)  # each one matcher, or a {a="b", c=~"d"} list
    category: str
    runbook: str | None = Field(default=None, pattern=_RUNBOOK_REF.pattern)
    playbook: str | None = None
    routing: RoutingSpec | None = None


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    categories: list[CategorySpec] = Field(default_factory=list)
    rules: list[RuleSpec] = Field(default_factory=list)


@dataclass(frozen=True)
class Rule:
    """One validated rule, with where it was defined."""

    name: str
    matchers: tuple[Matcher, ...]
    category: str
    playbook: str
    runbook: str | None = None
    routing: Routing = field(default_factory=Routing)
    path: str = ""
    line: int | None = None
    runbook_line: int | None = None
    shown_path: str = ""  # the file as messages show it (see shown_path)

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path

    @property
    def source(self) -> str:
        """Where the rule is, as alert messages show it: ``rules/default.yaml:39``."""
        where = self.shown_path or Path(self.path).name
        return f"{where}:{self.line}" if self.line else where

    def matches(self, labels: Mapping[str, str]) -> bool:
        return matches_all(self.matchers, labels)

    def describe_matchers(self) -> str:
        return ", ".join(str(m) for m in self.matchers)


@dataclass(frozen=True)
class RuleSet:
    """Rules in evaluation order, plus every known category and its description."""

    rules: tuple[Rule, ...] = ()
    categories: Mapping[str, str] = field(default_factory=dict)

    def match(self, labels: Mapping[str, str]) -> Rule | None:
        """The first rule whose matchers all match, as Alertmanager routes."""
        return next((rule for rule in self.rules if rule.matches(labels)), None)

    def check_runbooks(self, index: RunbookIndex) -> list[ConfigError]:
        """Errors for rule ``runbook:`` references the library cannot resolve."""
        errors = []
        for rule in self.rules:
            ref = rule.runbook
            if ref is None or ref.startswith(("http://", "https://")):
                continue
            if index.get(ref) is None:
                message = f"rule {rule.name!r}: runbook {ref!r} not found (missing file or anchor)"
                errors.append(ConfigError(rule.path, rule.runbook_line or rule.line, message))
        return errors

    def check_routing_keys(self, configured: Iterable[str]) -> list[ConfigError]:
        """Errors for rules naming a PagerDuty routing key that ``pagerduty.routing_keys`` lacks."""
        known = sorted(configured)
        errors = []
        for rule in self.rules:
            name = rule.routing.pagerduty_routing_key
            if name is not None and name not in known:
                have = ", ".join(known) or "none"
                message = (
                    f"rule {rule.name!r}: pagerduty_routing_key {name!r} is not configured "
                    f"in pagerduty.routing_keys (configured: {have})"
                )
                errors.append(ConfigError(rule.path, rule.line, message))
        return errors


def load_rules(
    paths: Iterable[Path | str],
    playbooks: Iterable[str] = (),
    relative_to: Path | None = None,
) -> RuleSet:
    """Load and validate rules files (folders: every ``*.yaml``/``*.yml``, sorted).

    ``playbooks`` names playbooks beyond the built-in categories and ``generic``. Every
    problem of every file is raised at once (:class:`ConfigErrors`). Messages name a
    rule's file relative to ``relative_to`` (the configuration's folder).
    """
    rules, problems = read_rules(paths, playbooks, relative_to)
    raise_if_any(problems)
    return rules


def read_rules(
    paths: Iterable[Path | str],
    playbooks: Iterable[str] = (),
    relative_to: Path | None = None,
) -> tuple[RuleSet, list[ConfigError]]:
    """The valid rules, and every problem of every file (for ``check``)."""
    problems: list[ConfigError] = []
    parsed: list[tuple[Locator, RulesFile, list[tuple[int, RuleSpec]]]] = []
    for path in _rule_files(paths, problems):
        loaded = collect(problems, lambda path=path: load_yaml(path))
        if loaded is not None:
            parsed.append(_validate_shape(*loaded, problems))
    categories = _categories(parsed, problems)
    known_playbooks = {*BUILTIN_CATEGORIES, GENERIC_PLAYBOOK, *playbooks} - {UNCLASSIFIED}
    rules: dict[str, Rule] = {}
    for locator, _, specs in parsed:
        shown = shown_path(locator.path, relative_to)
        for index, spec in specs:
            rule = _build_rule(spec, index, locator, categories, known_playbooks, problems, shown)
            if rule is not None and rule.name in rules:
                first = rules[rule.name].location
                message = f"duplicate rule name {rule.name!r} (first defined at {first})"
                problems.append(locator.error(("rules", index, "name"), message))
            elif rule is not None:
                rules[rule.name] = rule
    return RuleSet(tuple(rules.values()), categories), problems


def shown_path(path: Path, relative_to: Path | None) -> str:
    """A file as messages show it: relative to the configuration's folder (or, for the
    built-in rules, to the installation), never the server's absolute path."""
    resolved = path.resolve()
    for base in (relative_to, PROJECT_ROOT):
        if base is not None and resolved.is_relative_to(base.resolve()):
            return str(resolved.relative_to(base.resolve()))
    return path.name


def _rule_files(paths: Iterable[Path | str], problems: list[ConfigError]) -> list[Path]:
    """The files to load, in order; a folder contributes its YAML files sorted by name."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(
                p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()
            )
        elif path.exists():
            files.append(path)
        else:
            problems.append(ConfigError(path, None, "rules file or folder does not exist"))
    return files


def _validate_shape(
    data: object, locator: Locator, problems: list[ConfigError]
) -> tuple[Locator, RulesFile, list[tuple[int, RuleSpec]]]:
    """The file's categories, and each rule that has the right shape (the others are problems)."""
    if data is None:
        return locator, RulesFile(), []
    if not isinstance(data, dict):
        problems.append(
            locator.error((), "a rules file must be a mapping with 'rules' (and 'categories')")
        )
        return locator, RulesFile(), []
    raw_rules = data.get("rules")
    shape = {**data, "rules": []} if isinstance(raw_rules, list) else data
    spec = collect(problems, lambda: _validated(RulesFile, shape, locator, ()))
    specs = []
    for index, raw in enumerate(raw_rules if isinstance(raw_rules, list) else []):
        rule = collect(
            problems, lambda i=index, r=raw: _validated(RuleSpec, r, locator, ("rules", i))
        )
        if rule is not None:
            specs.append((index, rule))
    return locator, spec or RulesFile(), specs


def _validated(model: type[M], data: object, locator: Locator, at: tuple[str | int, ...]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise locator.validation_error(exc, at, model=model) from None


def _categories(
    parsed: Sequence[tuple[Locator, RulesFile, object]], problems: list[ConfigError]
) -> dict[str, str]:
    categories = {name: "built-in" for name in BUILTIN_CATEGORIES}
    for locator, spec, _ in parsed:
        for index, category in enumerate(spec.categories):
            if category.name in categories:
                where = "is built in" if category.name in BUILTIN_CATEGORIES else "is defined twice"
                problems.append(
                    locator.error(
                        ("categories", index, "name"), f"category {category.name!r} {where}"
                    )
                )
            else:
                categories[category.name] = category.description
    return categories


def _build_rule(
    spec: RuleSpec,
    index: int,
    locator: Locator,
    categories: Mapping[str, str],
    playbooks: set[str],
    problems: list[ConfigError],
    shown: str,
) -> Rule | None:
    at = ("rules", index)
    found: list[ConfigError] = []
    matchers = []
    for position, text in enumerate(spec.matchers):
        try:
            braced = text.lstrip().startswith("{")
            matchers.extend(parse_matchers(text) if braced else [parse_matcher(text)])
        except MatcherError as exc:
            found.append(locator.error((*at, "matchers", position), f"invalid matcher: {exc}"))
    if spec.category not in categories:
        known = ", ".join(sorted(categories))
        message = f"unknown category {spec.category!r} (known: {known})"
        found.append(locator.error((*at, "category"), message))
    playbook = spec.playbook or (spec.category if spec.category in playbooks else GENERIC_PLAYBOOK)
    if playbook not in playbooks:
        known = ", ".join(sorted(playbooks))
        message = f"unknown playbook {playbook!r} (known: {known})"
        found.append(locator.error((*at, "playbook"), message))
    routing = collect(found, lambda: _routing(spec.routing, locator, (*at, "routing")))
    problems += found
    if found or routing is None:
        return None
    return Rule(
        name=spec.name,
        matchers=tuple(matchers),
        category=spec.category,
        playbook=playbook,
        runbook=spec.runbook,
        routing=routing,
        path=str(locator.path),
        line=locator.line(at),
        runbook_line=locator.line((*at, "runbook")) if spec.runbook else None,
        shown_path=shown,
    )


def _routing(spec: RoutingSpec | None, locator: Locator, at: tuple[str | int, ...]) -> Routing:
    if spec is None:
        return Routing()
    for severity, pd_severity in spec.pagerduty_severity.items():
        if pd_severity not in PAGERDUTY_SEVERITIES:
            allowed = ", ".join(PAGERDUTY_SEVERITIES)
            raise locator.error(
                (*at, "pagerduty_severity", severity),
                f"PagerDuty severity {pd_severity!r} for {severity!r} must be one of {allowed}",
            )
    return Routing(**spec.model_dump())
