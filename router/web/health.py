"""``GET /healthz`` (the process is alive), ``GET /readyz`` (it can take work), ``GET /metrics``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from router.metrics import Metrics
from router.store import Store

log = logging.getLogger("router.web.health")

Readiness = Callable[[], Awaitable[dict[str, bool]]]

CHECK_TIMEOUT = 2.0
QUEUE_DEPTH_TIMEOUT = 1.0


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


class Probes:
    """Readiness checks and the metrics scrape, over the store and the lead's callback."""

    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        readiness: Readiness | None = None,
        *,
        timeout: float = CHECK_TIMEOUT,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.readiness = readiness
        self.timeout = timeout

    async def readyz(self, request: Request) -> Response:
        """200 when every check passes, else 503; the body names each check's result."""
        checks = {"accepting": bool(getattr(request.app.state, "accepting", True))}
        checks["store"] = await self._check("store", self.store.ping())
        checks["schema"] = await self._check("schema", self._schema_ok())
        checks.update(await self._callback())
        ready = all(checks.values())
        body = {"status": "ready" if ready else "not ready", "checks": checks}
        if not ready:
            body["failed"] = sorted(name for name, ok in checks.items() if not ok)
        return JSONResponse(body, status_code=200 if ready else 503)

    async def _schema_ok(self) -> bool:
        return await self.store.schema_version() > 0

    async def _check(self, name: str, check: Awaitable[object]) -> bool:
        try:
            result = await asyncio.wait_for(check, self.timeout)
        except Exception as exc:
            log.warning("readiness check %s failed: %s", name, _reason(exc))
            return False
        return result is not False

    async def _callback(self) -> dict[str, bool]:
        if self.readiness is None:
            return {}
        try:
            results = await asyncio.wait_for(self.readiness(), self.timeout)
        except Exception as exc:
            log.warning("readiness callback failed: %s", _reason(exc))
            return {"readiness": False}
        return {str(name): bool(ok) for name, ok in results.items()}

    async def metrics_endpoint(self, request: Request) -> Response:
        """The registry in Prometheus text format, with the queue and outbox gauges refreshed
        first."""
        await self._refresh_store_gauges()
        body, content_type = self.metrics.render()
        return Response(body, media_type=content_type)

    async def _refresh_store_gauges(self) -> None:
        """Best effort: on failure or timeout the gauges keep their last values."""
        try:
            depth, backlog = await asyncio.wait_for(
                asyncio.gather(self.store.queue_depth(), self.store.outbox_backlog()),
                QUEUE_DEPTH_TIMEOUT,
            )
        except Exception as exc:
            log.debug("queue depth or outbox backlog unavailable for /metrics: %s", _reason(exc))
            return
        self.metrics.queue_depth.set(depth)
        self.metrics.set_outbox(backlog)


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
