"""Request metrics, labelled by route template so that raw paths never become labels."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from router.metrics import Metrics

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"


def endpoint_label(scope: Scope) -> str:
    """The template of the route that handled the request (``/alertmanager``), or ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else "other"


class RequestMetricsMiddleware:
    """Count and time every HTTP request into ``metrics.http_requests`` / ``…_duration``."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            method = method_label(scope["method"])
            duration, count = self._series(endpoint_label(scope), method, status)
            duration.observe(time.perf_counter() - started)
            count.inc()

    def _series(self, endpoint: str, method: str, status: int) -> tuple[Any, Any]:
        """The duration and count series of one endpoint, method and status, bound once."""
        key = (endpoint, method, status)
        series = self._children.get(key)
        if series is None:  # few: route templates, known methods, statuses
            series = (
                self.metrics.http_request_duration.labels(endpoint),
                self.metrics.http_requests.labels(endpoint, method, str(status)),
            )
            self._children[key] = series
        return series
