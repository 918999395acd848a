"""Prometheus: instant and range queries over the HTTP API, and the alert's own expression.

Check kinds and the facts they publish:

- ``query`` (``query``, ``unit``, ``warn_above``, ``crit_above``, ``limit``):
  ``value`` (the largest), ``values`` ([{labels, value}], largest first), ``series``, ``empty``.
- ``range`` (``query``, ``minutes`` = 60, ``step``, ``unit``): ``first``, ``last``, ``min``,
  ``max``, ``trend`` (rising | falling | flat), ``points``, ``samples`` ([[unix, value]]).
- ``alert_expression``: the expression from the alert's ``generatorURL``, now and over
  the last hour: ``firing_now`` (it still returns series), ``value`` and the range facts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

import httpx

from router.config import PrometheusSettings
from router.diagnose.base import AlertContext, Check, CheckOutcome, ProviderError
from router.diagnose.units import format_value
from router.redact import Redactor
from router.triage import Evidence, Finding

MAX_POINTS = 240
NAME = "Prometheus"


class PrometheusProvider:
    name = "prometheus"
    kinds = frozenset({"query", "range", "alert_expression"})

    def __init__(self, settings: PrometheusSettings, secrets: Iterable[str] = ()) -> None:
        if not settings.url:
            raise ValueError("prometheus.url is not set")
        self.settings = settings
        self.redact = Redactor(secrets)
        auth: httpx.Auth | None = None
        headers = {}
        if settings.token is not None:
            headers["Authorization"] = f"Bearer {settings.token.get_secret_value()}"
            self.redact.add(settings.token)
        elif settings.username is not None:
            password = settings.password.get_secret_value() if settings.password else ""
            auth = httpx.BasicAuth(settings.username, password)
            self.redact.add(settings.password)
        verify: Any = str(settings.ca_file) if settings.ca_file else True
        if settings.insecure_skip_verify:
            verify = False
        self.client = httpx.AsyncClient(
            base_url=settings.url.rstrip("/"), headers=headers, auth=auth, verify=verify
        )

    async def run(self, check: Check, context: AlertContext) -> CheckOutcome:
        if check.kind == "query":
            return await self._query(check, context)
        if check.kind == "range":
            return await self._range(check, context, check.params["query"])
        return await self._alert_expression(check, context)

    async def close(self) -> None:
        await self.client.aclose()

    async def instant(self, query: str, context: AlertContext) -> list[dict[str, Any]]:
        data = await self._get("/api/v1/query", {"query": query}, context)
        return _series(data)

    async def range(
        self, query: str, minutes: float, step: float, context: AlertContext
    ) -> list[dict]:
        end = time.time()
        params = {"query": query, "start": end - minutes * 60, "end": end, "step": step}
        return _series(await self._get("/api/v1/query_range", params, context))

    async def _query(self, check: Check, context: AlertContext) -> CheckOutcome:
        params = check.params
        series = await self.instant(params["query"], context)
        values = sorted(
            ({"labels": s["metric"], "value": _number(s["value"][1])} for s in series),
            key=lambda v: -(v["value"] if v["value"] is not None else -math.inf),
        )
        top = values[0]["value"] if values else None
        facts = {"value": top, "values": values, "series": len(values), "empty": not values}
        unit = params.get("unit", "")
        title = check.title or "Query"
        summary = f"{title}: {format_value(top, unit)}" if values else f"{title}: no data"
        finding = Finding(
            title=summary,
            source=self.name,
            severity=_severity(top, params),
            evidence=[_table(values, unit, int(params.get("limit", 10)))]
            if len(values) > 1
            else [],
        )
        return CheckOutcome([finding], facts)

    async def _range(self, check: Check, context: AlertContext, query: str) -> CheckOutcome:
        minutes = float(check.params.get("minutes", 60))
        step = float(check.params.get("step") or max(1.0, minutes * 60 / 120))
        series = await self.range(query, minutes, step, context)
        facts = _trend(series)
        unit = check.params.get("unit", "")
        if facts["points"]:
            title = (
                f"{check.title or 'Trend'}: {facts['trend']} from {format_value(facts['first'], unit)} "
                f"to {format_value(facts['last'], unit)} over the last {minutes:g} min"
            )
        else:
            title = f"{check.title or 'Trend'}: no data over the last {minutes:g} min"
        return CheckOutcome([Finding(title=title, source=self.name)], facts)

    async def _alert_expression(self, check: Check, context: AlertContext) -> CheckOutcome:
        expression = context.alert.expression
        if not expression:
            raise ProviderError(f"{NAME}: the alert carries no expression (generatorURL)")
        now = await self.instant(expression, context)
        history = await self._range(check, context, expression)
        value = max((_number(s["value"][1]) or -math.inf for s in now), default=None)
        value = None if value in (None, -math.inf) else value
        facts = {**history.facts, "firing_now": bool(now), "value": value}
        if now:
            title = f"Alert expression still true now ({len(now)} series, value {format_value(value, '')})"
            severity = "warning"
        else:
            title, severity = "Alert expression no longer true now", "ok"
        series = Evidence(
            kind="series", label=expression, points=[tuple(p) for p in facts["samples"]]
        )
        findings = [
            Finding(title=title, source=self.name, severity=severity, evidence=[series]),
            *history.findings,
        ]
        return CheckOutcome(findings, facts)

    async def _get(self, path: str, params: dict[str, Any], context: AlertContext) -> Any:
        timeout = max(0.05, min(self.settings.timeout_seconds, context.remaining()))
        try:
            response = await self.client.get(path, params=params, timeout=timeout)
        except httpx.TimeoutException:
            raise ProviderError(f"{NAME}: timed out after {timeout:.3g} s") from None
        except httpx.HTTPError as exc:
            raise ProviderError(self.redact(f"{NAME}: {_reason(exc)}")) from None
        return self._data(response)

    def _data(self, response: httpx.Response) -> Any:
        if response.status_code in (401, 403):
            raise ProviderError(f"{NAME}: {response.status_code} {response.reason_phrase}")
        try:
            body = response.json()
        except ValueError:
            raise ProviderError(f"{NAME}: HTTP {response.status_code}, not a JSON answer") from None
        if body.get("status") != "success":
            error = body.get("error") or f"HTTP {response.status_code}"
            raise ProviderError(self.redact(f"{NAME}: {error}"))
        return body.get("data", {})


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


def _trend(series: list[dict[str, Any]]) -> dict[str, Any]:
    """Trend of the series with the largest last value (the one that matters most)."""
    best: list[list[float]] = []
    for s in series:
        points = [
            [float(t), v] for t, raw in s.get("values", []) if (v := _number(raw)) is not None
        ]
        if points and (not best or points[-1][1] > best[-1][1]):
            best = points
    if not best:
        return {
            "points": 0,
            "first": None,
            "last": None,
            "min": None,
            "max": None,
            "trend": "flat",
            "samples": [],
        }
    values = [v for _, v in best]
    first, last, low, high = values[0], values[-1], min(values), max(values)
    spread = max(high - low, abs(first) * 1e-9, 1e-12)
    change = (last - first) / spread
    trend = "rising" if change > 0.2 else "falling" if change < -0.2 else "flat"
    stride = max(1, math.ceil(len(best) / MAX_POINTS))
    return {
        "points": len(best),
        "first": first,
        "last": last,
        "min": low,
        "max": high,
        "trend": trend,
        "samples": best[::stride],
    }


def _severity(value: float | None, params: dict[str, Any]) -> str:
    if value is None:
        return "info"
    if params.get("crit_above") is not None and value > float(params["crit_above"]):
        return "critical"
    if params.get("warn_above") is not None and value > float(params["warn_above"]):
        return "warning"
    return "info"


def _table(values: list[dict[str, Any]], unit: str, limit: int) -> Evidence:
    """Only the labels that differ between series, so the table stays narrow."""
    keys = sorted({k for v in values for k in v["labels"]})
    varying = [k for k in keys if len({v["labels"].get(k) for v in values}) > 1] or keys[:3]
    rows = [
        [*(v["labels"].get(k, "") for k in varying), format_value(v["value"], unit)]
        for v in values[:limit]
    ]
    return Evidence(kind="table", label="top series", columns=[*varying, "value"], rows=rows)


def _reason(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or host unreachable"
    return type(exc).__name__
