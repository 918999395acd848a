"""HTTP health probes: GET the health and readiness URLs of the alerting service.

Check kind ``probe``: the ``url`` param (one URL or a list), or every configured probe
whose matchers match the alert's labels, its URL a template over ``labels`` and
``annotations`` rendered in Jinja's immutable sandbox with strict undefined values
(a probe whose template needs a label the alert lacks is skipped, not guessed), each
value placed so that it cannot change which host is probed (:mod:`.probe_urls`).

Facts: ``probes`` ([{url, status, ok, latency_ms, error}]), ``failing``, ``all_ok``, and
``skipped`` ([{url, error}] for templates that could not be rendered). Only GET; a
redirect is followed only within the same scheme, host and port; at most
``READ_LIMIT`` bytes of a body are read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import httpx
from jinja2 import StrictUndefined, TemplateError, nodes
from jinja2.environment import Template
from jinja2.sandbox import ImmutableSandboxedEnvironment

from router.classify.matchers import Matcher, matches_all, parse_matchers
from router.config import HttpProbeSettings
from router.diagnose import probe_urls
from router.diagnose.base import (
    AlertContext,
    Check,
    CheckOutcome,
    ProviderError,
    http_failure,
    seconds,
)
from router.diagnose.catalog import HTTP
from router.redact import Redactor
from router.triage import Evidence, Finding

READ_LIMIT = 4096
MAX_REDIRECTS = 3
NAME = HTTP.title


class HttpProbeProvider:
    """Concurrent, time-boxed GETs of health URLs."""

    name = HTTP.name
    kinds = HTTP.kinds

    def __init__(self, settings: HttpProbeSettings, secrets: Iterable[str] = ()) -> None:
        self.settings = settings
        self.redact = Redactor(secrets)
        self._env = ImmutableSandboxedEnvironment(
            undefined=StrictUndefined, autoescape=False, finalize=probe_urls.mark
        )
        self.probes: list[tuple[list[Matcher], str, Template]] = [
            (_matchers(probe.matchers), probe.url, self._compile(probe.url))
            for probe in settings.probes
        ]
        self.client = httpx.AsyncClient(follow_redirects=False)

    async def run(self, check: Check, context: AlertContext) -> CheckOutcome:
        urls, skipped = self._urls(check, context)
        if not urls:
            why = "; ".join(s["error"] for s in skipped)
            raise ProviderError(
                self.redact(f"{NAME}: no health URL for this alert" + (f" ({why})" if why else ""))
            )
        timeout = min(self.settings.timeout_seconds, context.remaining())
        if timeout <= 0:
            raise ProviderError(f"{NAME}: no time left before the alert's deadline")
        probes = await asyncio.gather(*(self._probe(url, timeout) for url in urls))
        failing = sum(1 for p in probes if not p["ok"])
        facts = {
            "probes": probes,
            "failing": failing,
            "all_ok": failing == 0,
            "skipped": skipped,
        }
        return CheckOutcome([_finding(probes, failing, skipped)], facts)

    async def close(self) -> None:
        await self.client.aclose()

    def _compile(self, source: str) -> Template:
        """Compile a URL template; syntax errors and private attributes are refused up front."""
        shown = self.redact(source)
        try:
            tree = self._env.parse(source)
        except TemplateError as exc:
            raise ValueError(f"http probe URL {shown!r}: {exc}") from None
        for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
            name = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", "")
            if isinstance(name, str) and name.startswith("_"):
                raise ValueError(f"http probe URL {shown!r}: unsafe attribute {name!r}")
        return self._env.from_string(source)

    def _urls(self, check: Check, context: AlertContext) -> tuple[list[str], list[dict]]:
        """The URLs to probe, and the configured probes whose template failed to render."""
        given = check.params.get("url")
        if given:
            return ([given] if isinstance(given, str) else [str(u) for u in given]), []
        variables = {"labels": context.labels, "annotations": context.alert.annotations}
        urls: list[str] = []
        skipped: list[dict] = []
        for matchers, source, template in self.probes:
            if not matches_all(matchers, context.labels):
                continue
            try:
                urls.append(probe_urls.render(template, variables))
            except Exception as exc:  # UndefinedError, SecurityError, a filter's TypeError…
                error = f"URL template: {type(exc).__name__}: {exc}"
                skipped.append({"url": self.redact(source), "error": self.redact(error)})
        return [u for u in urls if u], skipped

    async def _probe(self, url: str, timeout: float) -> dict[str, Any]:
        started = time.perf_counter()
        status, error = None, None
        try:
            status, error = await asyncio.wait_for(self._get(url, timeout), timeout)
        except (TimeoutError, httpx.TimeoutException):
            error = f"timed out after {seconds(timeout)} s"
        except httpx.InvalidURL:
            error = "invalid URL"
        except httpx.HTTPError as exc:
            error = http_failure(exc)
        return {
            "url": self.redact(url),
            "status": status,
            "ok": status is not None and 200 <= status < 300,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            "error": self.redact(error) if error else None,
        }

    async def _get(self, url: str, timeout: float) -> tuple[int, str | None]:
        """GET ``url``, following same-origin redirects; the final status and any refusal."""
        target = httpx.URL(url)
        for _ in range(MAX_REDIRECTS + 1):
            async with self.client.stream("GET", target, timeout=timeout) as response:
                async for _chunk in response.aiter_bytes(READ_LIMIT):
                    break  # the status is what matters: read no more than a little
                location = response.headers.get("location")
                if not response.is_redirect or not location:
                    return response.status_code, None
                following = target.join(location)
                if _origin(following) != _origin(target):
                    return response.status_code, f"redirect to {following.host} not followed"
                target = following
        return response.status_code, f"more than {MAX_REDIRECTS} redirects"


def _matchers(texts: list[str]) -> list[Matcher]:
    return [m for text in texts for m in parse_matchers(text)]


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _finding(probes: list[dict], failing: int, skipped: list[dict]) -> Finding:
    total = len(probes)
    noun = "health probe" if total == 1 else "health probes"
    title = f"{failing} of {total} {noun} failing" if failing else f"{total} {noun} answer 2xx"
    rows = [
        [p["url"], str(p["status"] or "—"), f"{p['latency_ms']:.0f} ms", p["error"] or ""]
        for p in sorted(probes, key=lambda p: p["ok"])
    ]
    evidence = [
        Evidence(
            kind="table", label="probes", columns=["url", "status", "latency", "error"], rows=rows
        )
    ]
    if skipped:
        text = "\n".join(f"{s['url']}: {s['error']}" for s in skipped)
        evidence.append(Evidence(kind="text", label="skipped probes", text=text))
    severity = "critical" if failing == total else "warning" if failing else "ok"
    return Finding(title=title, source="http", severity=severity, evidence=evidence)
