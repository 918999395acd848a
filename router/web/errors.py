"""The one HTTP error type, mapped to a JSON response in one place.

Handlers raise :class:`HTTPError` (a Starlette ``HTTPException``) for every answer
that is not a success; :func:`http_exception` turns it, and Starlette's own 404 and
405, into ``{"error": …, "detail": …}``. :class:`ErrorMiddleware` turns anything
unexpected into a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("router.web")

RETRY_AFTER_SECONDS = 5
MAX_DETAILS = 20


class HTTPError(HTTPException):
    """An error answer: ``status``, a short ``error``, an optional ``detail``.

    ``reason`` is what the log says about it (default: ``error``).
    """

    def __init__(
        self,
        status: int,
        error: str,
        detail: Any = None,
        *,
        headers: dict[str, str] | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(status, error, headers)
        self.error, self.body_detail, self.reason = error, detail, reason or error


def unavailable(error: str, *, reason: str | None = None) -> HTTPError:
    """A 503 that Alertmanager (which retries any 5xx) will retry."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return HTTPError(503, error, headers=headers, reason=reason)


def invalid(exc: ValidationError, error: str = "invalid payload", status: int = 400) -> HTTPError:
    """The error naming each field that does not fit (at most :data:`MAX_DETAILS`)."""
    details = [
        {"field": field_path(e["loc"]), "message": e["msg"]} for e in exc.errors()[:MAX_DETAILS]
    ]
    return HTTPError(status, error, details)


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("alerts", 0, "startsAt")`` → ``alerts[0].startsAt``; the root is ``(body)``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(body)"


def error_response(
    status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """``{"error": …, "detail": …}`` with ``status``; ``detail`` is left out when ``None``."""
    body: dict[str, Any] = {"error": error}
    if detail is not None:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, headers=headers)


async def http_exception(request: Request, exc: Exception) -> JSONResponse:
    """An :class:`HTTPError`, or Starlette's own 404 and 405, as JSON."""
    assert isinstance(exc, HTTPException)
    if isinstance(exc, HTTPError):
        return error_response(exc.status_code, exc.error, exc.body_detail, exc.headers)
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
