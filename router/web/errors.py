"""JSON error responses, and the handlers that turn failures into them."""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("router.web")

RETRY_AFTER_SECONDS = 5


def error_response(
    status: int,
    error: str,
    detail: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """``{"error": …, "detail": …}`` with ``status``; ``detail`` is left out when ``None``."""
    body: dict[str, Any] = {"error": error}
    if detail is not None:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, headers=headers)


def unavailable(error: str, retry_after: int = RETRY_AFTER_SECONDS) -> JSONResponse:
    """A 503 that Alertmanager (which retries any 5xx) will retry."""
    return error_response(503, error, headers={"Retry-After": str(retry_after)})


async def http_exception(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own 404 and 405 (and any ``HTTPException``) as JSON."""
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, exc.detail.lower(), headers=exc.headers)


class ErrorMiddleware:
    """Turn an unexpected exception into ``500 {"error": "internal error"}``.

    The traceback goes to the log, never into the response. When the response had
    already started there is nothing to send, so the exception propagates and the
    server drops the connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            log.exception(
                "unhandled error", extra={"method": scope["method"], "path": scope["path"]}
            )
            if started:
                raise
            await error_response(500, "internal error")(scope, receive, send)
