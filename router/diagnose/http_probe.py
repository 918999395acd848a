"""HTTP health probes: GET the health and readiness URLs of the alerting service.

Check kind ``probe``: the ``url`` param, or every configured probe whose matchers
match the alert's labels (its URL a sandboxed template over ``labels`` and
``annotations``). Facts: ``probes`` ([{url, status, ok, latency_ms, error}]),
``failing`` and ``all_ok``. Only GET, never following redirects elsewhere.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import httpx

from router.classify.matchers import matches_all, parse_matchers
from router.config import HttpProbeSettings
from router.diagnose import templating
from router.diagnose.base import AlertContext, Check, CheckOutcome, ProviderError
from router.redact import Redactor
from router.triage import Evidence, Finding

READ_LIMIT = 4096


class HttpProbeProvider:
    name = "http"
    kinds = frozenset({"probe"})

    def __init__(self, settings: HttpProbeSettings, secrets: Iterable[str] = ()) -> None:
        self.settings = settings
        self.redact = Redactor(secrets)
        self.probes = [
            (
                [m for text in probe.matchers for m in parse_matchers(text)],
                templating.compile_template(probe.url),
            )
            for probe in settings.probes
        ]
        self.client = httpx.AsyncClient(follow_redirects=False)

    async def run(self, check: Check, context: AlertContext) -> CheckOutcome:
        urls = [check.params["url"]] if check.params.get("url") else self._urls(context)
        if not urls:
            raise ProviderError("HTTP probe: no health URL is configured for this alert")
        timeout = max(0.05, min(self.settings.timeout_seconds, context.remaining()))
        probes = await asyncio.gather(*(self._probe(url, timeout) for url in urls))
        failing = sum(1 for p in probes if not p["ok"])
        facts = {"probes": probes, "failing": failing, "all_ok": failing == 0}
        title = (
            f"{failing} of {len(probes)} health probe(s) failing"
            if failing
            else f"{len(probes)} health probe(s) answer 2xx"
        )
        rows = [
            [p["url"], str(p["status"] or p["error"]), f"{p['latency_ms']:.0f} ms"] for p in probes
        ]
        table = Evidence(
            kind="table", label="probes", columns=["url", "status", "latency"], rows=rows
        )
        severity = "critical" if failing == len(probes) else "warning" if failing else "ok"
        return CheckOutcome(
            [Finding(title=title, source=self.name, severity=severity, evidence=[table])], facts
        )

    async def close(self) -> None:
        await self.client.aclose()

    def _urls(self, context: AlertContext) -> list[str]:
        variables = {"labels": context.labels, "annotations": context.alert.annotations}
        urls = []
        for matchers, template in self.probes:
            if matches_all(matchers, context.labels):
                url = templating.render(template, variables)
                if url:
                    urls.append(url)
        return urls

    async def _probe(self, url: str, timeout: float) -> dict[str, Any]:
        shown = self.redact(url)
        started = time.perf_counter()
        status, error = None, None
        try:
            async with self.client.stream("GET", url, timeout=timeout) as response:
                status = response.status_code
                async for _ in response.aiter_bytes(READ_LIMIT):
                    break  # the status is what matters; read no more than a little
        except httpx.TimeoutException:
            error = f"timed out after {timeout:.3g} s"
        except httpx.HTTPError as exc:
            error = (
                "connection refused" if isinstance(exc, httpx.ConnectError) else type(exc).__name__
            )
        latency = (time.perf_counter() - started) * 1000
        ok = status is not None and 200 <= status < 300
        return {
            "url": shown,
            "status": status,
            "ok": ok,
            "latency_ms": round(latency, 1),
            "error": error,
        }
