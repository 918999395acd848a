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

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from router.classify.matchers import (
    Matcher,
    MatcherError,
    matches_all,
    parse_matcher,
    parse_matchers,
)
from router.pipeline import RunbookIndex
from router.triage import BUILTIN_CATEGORIES, UNCLASSIFIED, Routing
from router.yamlfile import ConfigError, Locator, load_yaml

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

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path

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


def load_rules(paths: Iterable[Path | str], playbooks: Iterable[str] = ()) -> RuleSet:
    """Load and validate rules files (folders: every ``*.yaml``/``*.yml``, sorted).

    ``playbooks`` names playbooks beyond the built-in categories and ``generic``.
    """
    files = [(path, *load_yaml(path)) for path in rule_files(paths)]
    parsed = [(locator, _validate_shape(data, locator)) for _, data, locator in files]
    categories = _categories(parsed)
    known_playbooks = {*BUILTIN_CATEGORIES, GENERIC_PLAYBOOK, *playbooks} - {UNCLASSIFIED}
    rules: list[Rule] = []
    seen: dict[str, Rule] = {}
    for locator, spec in parsed:
        for index, rule_spec in enumerate(spec.rules):
            rule = _build_rule(rule_spec, index, locator, categories, known_playbooks)
            if rule.name in seen:
                first = seen[rule.name]
                message = f"duplicate rule name {rule.name!r} (first defined at {first.location})"
                raise locator.error(("rules", index, "name"), message)
            seen[rule.name] = rule
            rules.append(rule)
    return RuleSet(tuple(rules), categories)


def rule_files(paths: Iterable[Path | str]) -> list[Path]:
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
            raise ConfigError(path, None, "rules file or folder does not exist")
    return files


def _validate_shape(data: object, locator: Locator) -> RulesFile:
    if data is None:
        return RulesFile()
    if not isinstance(data, dict):
        raise locator.error((), "a rules file must be a mapping with 'rules' (and 'categories')")
    try:
        return RulesFile.model_validate(data)
    except ValidationError as exc:
        raise locator.validation_error(exc) from None


def _categories(parsed: Sequence[tuple[Locator, RulesFile]]) -> dict[str, str]:
    categories = {name: "built-in" for name in BUILTIN_CATEGORIES}
    for locator, spec in parsed:
        for index, category in enumerate(spec.categories):
            if category.name in categories:
                where = "is built in" if category.name in BUILTIN_CATEGORIES else "is defined twice"
                raise locator.error(
                    ("categories", index, "name"), f"category {category.name!r} {where}"
                )
            categories[category.name] = category.description
    return categories


def _build_rule(
    spec: RuleSpec,
    index: int,
    locator: Locator,
    categories: Mapping[str, str],
    playbooks: set[str],
) -> Rule:
    at = ("rules", index)
    matchers = []
    for position, text in enumerate(spec.matchers):
        try:
            braced = text.lstrip().startswith("{")
            matchers.extend(parse_matchers(text) if braced else [parse_matcher(text)])
        except MatcherError as exc:
            raise locator.error((*at, "matchers", position), f"invalid matcher: {exc}") from None
    if spec.category not in categories:
        known = ", ".join(sorted(categories))
        raise locator.error(
            (*at, "category"), f"unknown category {spec.category!r} (known: {known})"
        )
    playbook = spec.playbook or (spec.category if spec.category in playbooks else GENERIC_PLAYBOOK)
    if playbook not in playbooks:
        known = ", ".join(sorted(playbooks))
        raise locator.error((*at, "playbook"), f"unknown playbook {playbook!r} (known: {known})")
    return Rule(
        name=spec.name,
        matchers=tuple(matchers),
        category=spec.category,
        playbook=playbook,
        runbook=spec.runbook,
        routing=_routing(spec.routing, locator, (*at, "routing")),
        path=str(locator.path),
        line=locator.line(at),
        runbook_line=locator.line((*at, "runbook")) if spec.runbook else None,
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
