"""Prometheus: instant and range queries over the HTTP API, and the alert's own expression.

Check kinds and the facts they publish:

- ``query`` (``query``, ``unit``, ``warn_above``, ``crit_above``, ``limit``):
  ``value`` (the largest), ``values`` ([{labels, value}], largest first), ``series``, ``empty``.
- ``range`` (``query``, ``minutes`` = 60, ``step``, ``unit``): ``first``, ``last``, ``min``,
  ``max``, ``trend`` (rising | falling | flat), ``points``, ``samples`` ([[unix, value]]).
- ``alert_expression`` (``minutes`` = 60, ``unit``, else read from the expression's shape, see
  ``expression_unit``): the expression from the alert's
  ``generatorURL``, now and over the last hour: ``firing_now`` (it still returns series),
  ``value`` (the measured side now, worst series), ``threshold`` and ``operator`` (when the
  expression ends in a comparison with a constant), and the range facts of the measured side.

Every kind also publishes ``warnings``: what Prometheus warned about (empty when all is well).
NaN values are ``None`` in facts and "NaN" in findings; ±Inf stay floats.
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from router.classify.exprfacts import constant
from router.classify.promql import parse
from router.classify.promql_ast import BinaryExpr, Paren
from router.classify.promql_lexer import PromQLError, tokenize
from router.config import PrometheusSettings
from router.diagnose.base import (
    AlertContext,
    Check,
    CheckOutcome,
    ProviderError,
    ProviderSettingsError,
    http_failure,
    seconds,
)
from router.diagnose.catalog import PROMETHEUS
from router.redact import Redactor
from router.triage import Evidence, Finding
from router.units import format_value

MAX_POINTS = 240
MAX_QUERY_BYTES = 64 * 1024  # a longer query is not sent: no server takes such a URL
NAME = PROMETHEUS.title
TREND_TOLERANCE = 0.2  # |last - first| below this share of (max - min) is "flat"
_FLIPPED = {">": "<", "<": ">", ">=": "<=", "<=": ">=", "==": "==", "!=": "!="}


@dataclass(frozen=True)
class Threshold:
    """An expression ``measured > value``: what is measured, and the line it must not cross."""

    measured: str
    operator: str
    value: float

    @property
    def low_is_bad(self) -> bool:
        return self.operator in ("<", "<=")


def client_options(settings: PrometheusSettings) -> dict[str, Any]:
    """``httpx`` client arguments for ``settings``: base URL, bearer or basic auth, TLS trust."""
    assert settings.url, "prometheus.url is not set"
    headers = {}
    auth: httpx.Auth | None = None
    if settings.token is not None:
        headers["Authorization"] = f"Bearer {settings.token.get_secret_value()}"
    elif settings.username is not None:
        password = settings.password.get_secret_value() if settings.password else ""
        auth = httpx.BasicAuth(settings.username, password)
    return {
        "base_url": settings.url.rstrip("/"),
        "headers": headers,
        "auth": auth,
        "verify": tls_verify(settings),
    }


class PrometheusProvider:
    """Read-only queries against one Prometheus (or a compatible API: Thanos, Mimir…)."""

    name = PROMETHEUS.name
    kinds = PROMETHEUS.kinds

    def __init__(self, settings: PrometheusSettings, secrets: Iterable[str] = ()) -> None:
        if not settings.url:
            raise ValueError("prometheus.url is not set")
        self.settings = settings
        self.redact = Redactor(secrets)
        self.redact.add(settings.token)
        self.redact.add(settings.password)
        self.client = httpx.AsyncClient(**client_options(settings))

    async def run(self, check: Check, context: AlertContext) -> CheckOutcome:
        if check.kind == "query":
            return await self._query(check, context)
        if check.kind == "range":
            return await self._range(check, context)
        if check.kind == "alert_expression":
            return await self._alert_expression(check, context)
        raise ProviderError(f"{NAME}: unknown check kind {check.kind!r}")

    async def close(self) -> None:
        await self.client.aclose()

    async def instant(self, query: str, context: AlertContext) -> tuple[list[dict], list[str]]:
        """The series of an instant query, and Prometheus's warnings."""
        data, warnings = await self._get("/api/v1/query", {"query": query}, context)
        return _series(data), warnings

    async def range(
        self, query: str, minutes: float, step: float, context: AlertContext
    ) -> tuple[list[dict], list[str]]:
        """The series of a range query ending now, and Prometheus's warnings."""
        end = time.time()
        params = {"query": query, "start": end - minutes * 60, "end": end, "step": step}
        data, warnings = await self._get("/api/v1/query_range", params, context)
        return _series(data), warnings

    async def _query(self, check: Check, context: AlertContext) -> CheckOutcome:
        series, warnings = await self.instant(_required(check, "query"), context)
        values = sorted(
            ({"labels": s.get("metric", {}), "value": _number(s["value"][1])} for s in series),
            key=lambda v: -_rank(v["value"]),
        )
        top = values[0]["value"] if values else None
        unit = _unit(check)
        shown = f"{format_value(top, unit)}{_where(values)}" if values else "no data"
        evidence = [_table(values, unit, _number_param(check, "limit", 10))] if values else []
        warn, crit = _number_param(check, "warn_above"), _number_param(check, "crit_above")
        finding = Finding(
            title=f"{check.title or 'Query'}: {shown}",
            source=self.name,
            severity=_severity(top, warn, crit),
            evidence=evidence + _warned(warnings),
        )
        facts = {"value": top, "values": values, "series": len(values), "empty": not values}
        return CheckOutcome([finding], {**facts, "warnings": warnings})

    async def _range(self, check: Check, context: AlertContext) -> CheckOutcome:
        query = _required(check, "query")
        minutes, step = _window(check)
        series, warnings = await self.range(query, minutes, step, context)
        facts = {**_trend(series), "warnings": warnings}
        title = f"{check.title or 'Trend'}: {_describe(facts, minutes, _unit(check))}"
        evidence = [_graph(query, facts)] if facts["points"] else []
        finding = Finding(title=title, source=self.name, evidence=evidence + _warned(warnings))
        return CheckOutcome([finding], facts)

    async def _alert_expression(self, check: Check, context: AlertContext) -> CheckOutcome:
        expression = context.alert.expression
        if not expression:
            raise ProviderError(f"{NAME}: the alert carries no expression (generatorURL)")
        threshold = split_threshold(expression)
        measured = threshold.measured if threshold else expression
        low_is_bad = bool(threshold and threshold.low_is_bad)
        minutes, step = _window(check)
        firing, current, history = await asyncio.gather(
            self.instant(expression, context),
            self.instant(measured, context) if threshold else _nothing(),
            self.range(measured, minutes, step, context),
        )
        now = current[0] if threshold else firing[0]
        value = _worst([_number(s["value"][1]) for s in now], low_is_bad)
        warnings = sorted({*firing[1], *current[1], *history[1]})
        facts = {
            **_trend(history[0], low_is_bad),
            "firing_now": bool(firing[0]),
            "value": value,
            "threshold": threshold.value if threshold else None,
            "operator": threshold.operator if threshold else None,
            "warnings": warnings,
        }
        unit = _unit(check) or expression_unit(measured, threshold)
        trend = Evidence(kind="text", label="last hour", text=_describe(facts, minutes, unit))
        evidence = [trend, _graph(measured, facts)] if facts["points"] else []
        finding = Finding(
            title=_expression_title(facts, threshold, unit),
            source=self.name,
            severity="warning" if facts["firing_now"] else "ok",
            evidence=evidence + _warned(warnings),
        )
        return CheckOutcome([finding], facts)

    async def _get(
        self, path: str, params: dict[str, Any], context: AlertContext
    ) -> tuple[dict, list[str]]:
        size = len(str(params.get("query", "")).encode())
        if size > MAX_QUERY_BYTES:
            raise ProviderError(f"{NAME}: the query is {size:,} bytes, over {MAX_QUERY_BYTES:,}")
        timeout = min(self.settings.timeout_seconds, context.remaining())
        if timeout <= 0:
            raise ProviderError(f"{NAME}: no time left before the alert's deadline")
        try:
            response = await self.client.get(path, params=params, timeout=timeout)
        except httpx.TimeoutException:
            raise ProviderError(f"{NAME}: timed out after {seconds(timeout)} s") from None
        except httpx.HTTPError as exc:
            raise ProviderError(self.redact(f"{NAME}: {http_failure(exc)}")) from None
        except httpx.InvalidURL as exc:  # e.g. too long once encoded
            raise ProviderError(f"{NAME}: the query cannot be sent: {exc}") from None
        return self._data(response)

    def _data(self, response: httpx.Response) -> tuple[dict, list[str]]:
        if response.status_code in (401, 403):
            raise ProviderError(f"{NAME}: {response.status_code} {response.reason_phrase}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ProviderError(f"{NAME}: HTTP {response.status_code}, not a Prometheus API answer")
        if body.get("status") != "success":
            error = body.get("error") or f"HTTP {response.status_code}"
            raise ProviderError(self.redact(f"{NAME}: {error}"))
        warnings = [self.redact(str(w)) for w in body.get("warnings") or []]
        data = body.get("data")
        return (data if isinstance(data, dict) else {}), warnings


def tls_verify(settings: PrometheusSettings) -> ssl.SSLContext | bool:
    """How to verify the server: the ``ca_file``'s CA, the system's, or not at all."""
    if settings.insecure_skip_verify:
        return False
    if settings.ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(settings.ca_file))
    except OSError as exc:
        why = exc.strerror or str(exc)
        message = f"cannot read the CA file {settings.ca_file} ({why})"
    except ssl.SSLError:
        message = f"the CA file {settings.ca_file} holds no PEM certificate"
    raise ProviderSettingsError(("prometheus", "ca_file"), message)


def split_threshold(expression: str) -> Threshold | None:
    """``rate(x[5m]) > 0.05`` → measured ``rate(x[5m])``, ``>``, ``0.05``; else ``None``."""
    try:
        tree = parse(expression)
        tokens = tokenize(expression)
    except (PromQLError, RecursionError):
        return None
    if not isinstance(tree, BinaryExpr) or tree.op not in _FLIPPED:
        return None
    if tree.return_bool or tree.matching is not None:
        return None
    depth, position = 0, None
    for token in tokens:
        if token.is_op("(", "{", "["):
            depth += 1
        elif token.is_op(")", "}", "]"):
            depth -= 1
        elif depth == 0 and token.is_op(tree.op):
            position = token.pos
    if position is None:
        return None
    left, right = expression[:position].strip(), expression[position + len(tree.op) :].strip()
    if (value := constant(tree.rhs)) is not None and left:
        return Threshold(left, tree.op, value)
    if (value := constant(tree.lhs)) is not None and right:
        return Threshold(right, _FLIPPED[tree.op], value)
    return None


def expression_unit(measured: str, threshold: Threshold | None) -> str:
    """The unit of an alert's measured side, from its shape, so its value reads as people read it.

    Durations (``histogram_quantile``, ``*_seconds*``) are ``seconds``; ``a / b`` compared
    with a threshold up to 1 is a ``ratio`` (shown as a percentage); ``… * 100`` is ``percent``.
    """
    if "histogram_quantile" in measured or "_seconds" in measured:
        return "seconds"
    try:
        tree = parse(measured)
    except (PromQLError, RecursionError):
        return ""
    while isinstance(tree, Paren):
        tree = tree.expr
    if not isinstance(tree, BinaryExpr):
        return ""
    if tree.op == "/" and (threshold is None or 0 < threshold.value <= 1):
        return "ratio"
    if tree.op == "*" and 100 in (constant(tree.lhs), constant(tree.rhs)):
        return "percent"
    return ""


async def _nothing() -> tuple[list[dict], list[str]]:
    return [], []


def _required(check: Check, name: str) -> str:
    value = check.params.get(name)
    if not value or not isinstance(value, str):
        raise ProviderError(f"{NAME}: check {check.id!r} needs a {name!r} parameter")
    return value


def _number_param(check: Check, name: str, default: float | None = None) -> Any:
    value = check.params.get(name, default)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ProviderError(f"{NAME}: check {check.id!r}: {name} must be a number") from None
    return int(number) if name == "limit" else number


def _window(check: Check) -> tuple[float, float]:
    minutes = _number_param(check, "minutes", 60.0)
    if minutes <= 0:
        raise ProviderError(f"{NAME}: check {check.id!r}: minutes must be positive")
    step = _number_param(check, "step") or minutes * 60 / 120
    return minutes, max(1.0, step)


def _unit(check: Check) -> str:
    return str(check.params.get("unit") or "")


def _series(data: dict[str, Any]) -> list[dict[str, Any]]:
    kind, result = data.get("resultType"), data.get("result", [])
    if kind == "scalar":
        return [{"metric": {}, "value": result}]
    if kind in ("vector", "matrix"):
        return list(result)
    return []


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _rank(value: float | None) -> float:
    return -math.inf if value is None else value


def _worst(values: list[float | None], low_is_bad: bool = False) -> float | None:
    known = [v for v in values if v is not None]
    return (min(known) if low_is_bad else max(known)) if known else None


def _trend(series: list[dict[str, Any]], low_is_bad: bool = False) -> dict[str, Any]:
    """Trend of the series whose last value is the worst (the one that matters most)."""
    best: list[list[float]] = []
    for s in series:
        points = [
            [float(t), v] for t, raw in s.get("values", []) if (v := _number(raw)) is not None
        ]
        if points and (not best or _worse(points[-1][1], best[-1][1], low_is_bad)):
            best = points
    if not best:
        empty = dict.fromkeys(("first", "last", "min", "max"))
        return {**empty, "points": 0, "trend": "flat", "samples": []}
    values = [v for _, v in best]
    first, last, low, high = values[0], values[-1], min(values), max(values)
    stride = max(1, math.ceil(len(best) / MAX_POINTS))
    facts = {"first": first, "last": last, "min": low, "max": high}
    trend = _direction(first, last, low, high)
    return {**facts, "trend": trend, "points": len(best), "samples": best[::stride]}


def _worse(value: float, than: float, low_is_bad: bool) -> bool:
    return value < than if low_is_bad else value > than


def _direction(first: float, last: float, low: float, high: float) -> str:
    if not all(math.isfinite(v) for v in (first, last, low, high)):
        return "rising" if last > first else "falling" if last < first else "flat"
    spread = high - low
    if spread <= max(abs(first), abs(last)) * 1e-9:
        return "flat"
    change = (last - first) / spread
    return (
        "rising" if change > TREND_TOLERANCE else "falling" if change < -TREND_TOLERANCE else "flat"
    )


def _describe(facts: dict[str, Any], minutes: float, unit: str) -> str:
    """How the series moved: "rising from 1.2% to 6.5% over the last 60 min"."""
    if not facts["points"]:
        return f"no data over the last {minutes:g} min"
    first, last = format_value(facts["first"], unit), format_value(facts["last"], unit)
    if facts["trend"] == "flat":
        return f"flat at about {last} over the last {minutes:g} min"
    return f"{facts['trend']} from {first} to {last} over the last {minutes:g} min"


def _expression_title(facts: dict[str, Any], threshold: Threshold | None, unit: str) -> str:
    value = format_value(facts["value"], unit) if facts["value"] is not None else None
    line = f"{threshold.operator} {format_value(threshold.value, unit)}" if threshold else ""
    if facts["firing_now"]:
        shown = f": {value}" if value is not None else ""
        return f"Alert expression still true now{shown}" + (f" ({line})" if line else "")
    if value is not None and line:
        return f"Alert expression no longer true now: {value} (threshold {line})"
    return "Alert expression no longer true now"


def _severity(value: float | None, warn: float | None, crit: float | None) -> str:
    if value is None:
        return "info"
    if crit is not None and value > crit:
        return "critical"
    if warn is not None and value > warn:
        return "warning"
    return "info" if warn is None and crit is None else "ok"


def _varying(values: list[dict[str, Any]]) -> list[str]:
    """The labels whose values differ between series, so the table stays narrow."""
    keys = sorted({k for v in values for k in v["labels"]})
    return [k for k in keys if len({v["labels"].get(k) for v in values}) > 1]


def _where(values: list[dict[str, Any]]) -> str:
    """`` (pod=api-7d9c)``: which series the top value belongs to, when there are several."""
    varying = _varying(values)[:3] if len(values) > 1 else []
    labels = values[0]["labels"] if values else {}
    return " (" + ", ".join(f"{k}={labels.get(k, '')}" for k in varying) + ")" if varying else ""


def _table(values: list[dict[str, Any]], unit: str, limit: int) -> Evidence:
    if len(values) == 1:
        labels = values[0]["labels"]
        label = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__")
        return Evidence(kind="value", label=label, value=format_value(values[0]["value"], unit))
    varying = _varying(values) or ["series"]
    rows = [
        [*(v["labels"].get(k, "") for k in varying), format_value(v["value"], unit)]
        for v in values[: max(1, limit)]
    ]
    label = "top series" if len(values) <= limit else f"top {limit} of {len(values)} series"
    return Evidence(kind="table", label=label, columns=[*varying, "value"], rows=rows)


def _graph(query: str, facts: dict[str, Any]) -> Evidence:
    return Evidence(kind="series", label=query, points=[(t, v) for t, v in facts["samples"]])


def _warned(warnings: list[str]) -> list[Evidence]:
    if not warnings:
        return []
    return [Evidence(kind="text", label="Prometheus warnings", text="\n".join(warnings))]
