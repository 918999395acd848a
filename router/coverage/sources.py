"""Where alerting rules come from: a Prometheus, rule files, or ``PrometheusRule`` manifests.

Each rule becomes the alert Prometheus would send for it (:meth:`AlertingRule.alert`):
``alertname`` and the rule's labels, its annotations with templates left out (their
values are only known when it fires), and a ``generatorURL`` carrying the expression.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import yaml

from router.alerts import Alert
from router.config import PrometheusSettings
from router.diagnose.prometheus import client_options
from router.yamlfile import ConfigError, Locator

DEFAULT_PROMETHEUS = "http://localhost:9090"
_TEMPLATE = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_SPACES = re.compile(r"[ \t]{2,}")


@dataclass(frozen=True)
class AlertingRule:
    """One alerting rule and where it was read from (``file:line`` or ``group in file``)."""

    name: str
    expr: str
    source: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def alert(self, prometheus_url: str) -> Alert:
        """The firing alert Prometheus would send for this rule (without series labels)."""
        url = f"{prometheus_url.rstrip('/')}/graph?g0.expr={quote(self.expr)}&g0.tab=1"
        return Alert(
            status="firing",
            labels={**_plain(self.labels), "alertname": self.name},
            annotations={k: v for k, v in _plain(self.annotations).items() if v},
            startsAt=datetime.now(UTC),
            generatorURL=url,
        )


def _plain(values: dict[str, str]) -> dict[str, str]:
    """Values with their Go templates (``{{ $labels.pod }}``) left out."""
    return {k: _SPACES.sub(" ", _TEMPLATE.sub("", str(v))).strip() for k, v in values.items()}


def rules_from_prometheus(settings: PrometheusSettings) -> list[AlertingRule]:
    """The alerting rules a Prometheus has loaded (``/api/v1/rules?type=alert``)."""
    where = settings.url or "prometheus.url"
    try:
        with httpx.Client(**client_options(settings), timeout=settings.timeout_seconds) as client:
            response = client.get("/api/v1/rules", params={"type": "alert"})
    except httpx.HTTPError as exc:
        raise ConfigError(where, None, f"cannot read the alerting rules: {exc}") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or body.get("status") != "success":
        error = body.get("error") or response.reason_phrase
        raise ConfigError(where, None, f"/api/v1/rules answered {response.status_code}: {error}")
    return [
        AlertingRule(
            name=rule.get("name", ""),
            expr=rule.get("query", ""),
            source=f"group {group.get('name', '?')} in {group.get('file') or where}",
            labels=rule.get("labels") or {},
            annotations=rule.get("annotations") or {},
        )
        for group in body["data"].get("groups", [])
        for rule in group.get("rules", [])
        if rule.get("type", "alerting") == "alerting"
    ]


def rules_from_files(paths: Iterable[Path]) -> list[AlertingRule]:
    """Alerting rules from Prometheus rule files and ``PrometheusRule`` manifests.

    A file may hold several YAML documents (``kubectl get prometheusrules -o yaml`` output,
    a ``List``, or manifests separated by ``---``); recording rules are skipped.
    """
    return [rule for path in paths for rule in _file_rules(path)]


def _file_rules(path: Path) -> Iterator[AlertingRule]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read file: {exc.strerror or exc}") from None
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        documents = list(yaml.safe_load_all(text))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ConfigError(
            path, mark.line + 1 if mark else None, f"invalid YAML: {exc.problem or exc}"
        ) from None
    found = False
    for node, document in zip(nodes, documents, strict=True):
        locator = Locator(path, node)
        for loc, groups in _groups(document):
            found = True
            yield from _group_rules(groups, loc, locator)
    if not found:
        raise ConfigError(path, None, "no rule groups: expected `groups:` or a PrometheusRule")


def _groups(document: Any, loc: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple, Any]]:
    """Every ``groups`` list of a document: a rule file, a PrometheusRule, or a List of them."""
    if not isinstance(document, dict):
        return
    if "groups" in document:
        yield (*loc, "groups"), document["groups"]
    elif document.get("kind") == "PrometheusRule" and isinstance(document.get("spec"), dict):
        yield from _groups(document["spec"], (*loc, "spec"))
    elif isinstance(document.get("items"), list):
        for index, item in enumerate(document["items"]):
            yield from _groups(item, (*loc, "items", index))


def _group_rules(groups: Any, loc: tuple, locator: Locator) -> Iterator[AlertingRule]:
    if not isinstance(groups, list):
        raise locator.error(loc, "groups must be a list")
    for g, group in enumerate(groups):
        rules = group.get("rules") if isinstance(group, dict) else None
        if not isinstance(rules, list):
            raise locator.error((*loc, g), "a group needs a list of rules")
        for r, rule in enumerate(rules):
            where = (*loc, g, "rules", r)
            if not isinstance(rule, dict) or "record" in rule:
                continue
            if not isinstance(rule.get("alert"), str) or "expr" not in rule:
                raise locator.error(where, "an alerting rule needs `alert` and `expr`")
            yield AlertingRule(
                name=rule["alert"],
                expr=str(rule["expr"]).strip(),
                source=f"{locator.path}:{locator.line(where)}",
                labels=_strings(rule.get("labels"), where, "labels", locator),
                annotations=_strings(rule.get("annotations"), where, "annotations", locator),
            )


def _strings(value: Any, where: tuple, key: str, locator: Locator) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise locator.error((*where, key), f"{key} must be a mapping")
    return {str(k): str(v) for k, v in value.items()}
