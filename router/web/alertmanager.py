"""``POST /alertmanager``: authenticate, validate, persist, acknowledge.

The checks run in this order, each with its own status and JSON body: credentials
(401), content type (415), size (413), JSON syntax (400), payload schema (422),
then the store (503 when unavailable or when the service is draining). Only a
payload that is durably stored gets its 202. Alertmanager retries a 5xx and drops
a 4xx for good, so anything transient is a 5xx.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from router.alerts import WebhookPayload
from router.jsonbody import BadJSON, parse_json
from router.metrics import Metrics
from router.store import IngestResult, Store, StoreUnavailable
from router.web.auth import WebhookAuth
from router.web.bodies import invalid
from router.web.errors import error_response, unavailable

log = logging.getLogger("router.web.alertmanager")

SUPPORTED_VERSION = "4"


class Rejected(Exception):
    """A request that gets an error response instead of a 202."""

    def __init__(self, response: Response, reason: str) -> None:
        super().__init__(reason)
        self.response = response
        self.reason = reason


@dataclass
class _Outcome:
    """What the log line for one webhook says."""

    status: int = 500
    error: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


class AlertmanagerWebhook:
    """The ``POST /alertmanager`` endpoint; :meth:`post` is the request handler."""

    def __init__(
        self,
        auth: WebhookAuth,
        store: Store,
        metrics: Metrics,
        max_body_bytes: int,
        on_ingest: Callable[[], None] | None = None,
    ) -> None:
        self.auth = auth
        self.store = store
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.on_ingest = on_ingest

    async def post(self, request: Request) -> Response:
        started = time.perf_counter()
        outcome = _Outcome()
        try:
            response = await self._handle(request, outcome)
        except Rejected as rejected:
            response, outcome.error = rejected.response, rejected.reason
        except Exception:
            outcome.error = "internal error"
            _log(outcome, (time.perf_counter() - started) * 1000)
            raise
        outcome.status = response.status_code
        _log(outcome, (time.perf_counter() - started) * 1000)
        return response

    async def _handle(self, request: Request, outcome: _Outcome) -> Response:
        self._authenticate(request)
        _check_content_type(request)
        body = await self._read_body(request)
        payload = _parse(body)
        outcome.fields.update(
            receiver=payload.receiver, group_key=payload.groupKey, alerts=len(payload.alerts)
        )
        if not getattr(request.app.state, "accepting", True):
            raise Rejected(unavailable("shutting down, retry later"), "draining")
        result = await self._ingest(payload, body)
        outcome.fields.update(new=result.new, duplicates=result.duplicates)
        return JSONResponse(
            {
                "status": "accepted",
                "alerts": len(payload.alerts),
                "new": result.new,
                "duplicates": result.duplicates,
            },
            status_code=202,
        )

    def _authenticate(self, request: Request) -> None:
        if not self.auth.check(request.headers.get("authorization")):
            response = error_response(
                401,
                "unauthorized",
                "missing or invalid credentials",
                headers={"WWW-Authenticate": self.auth.challenge()},
            )
            raise Rejected(response, "unauthorized")

    async def _read_body(self, request: Request) -> bytes:
        """The body, refusing (413) more than ``max_body_bytes`` without reading past it."""
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise Rejected(error_response(400, "invalid Content-Length"), "bad length")
            if int(length) > self.max_body_bytes:
                raise Rejected(self._too_large(), "too large")
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise Rejected(self._too_large(), "too large")
                chunks.append(chunk)
        except ClientDisconnect:
            raise Rejected(error_response(400, "client disconnected"), "disconnected") from None
        return b"".join(chunks)

    def _too_large(self) -> Response:
        # The connection stays open: the server discards the rest of the upload without
        # buffering it, and the client reliably gets this answer (closing instead makes the
        # client's next write fail with a reset that loses the response).
        return error_response(413, "payload too large", f"the limit is {self.max_body_bytes} bytes")

    async def _ingest(self, payload: WebhookPayload, body: bytes) -> IngestResult:
        try:
            result = await self.store.ingest(payload, body)
        except StoreUnavailable as exc:
            raise Rejected(unavailable("store unavailable, retry later"), str(exc)) from exc
        for alert in payload.alerts:
            self.metrics.alerts_received.labels(alert.status).inc()
        self.metrics.alert_duplicates.inc(result.duplicates)
        if result.new and self.on_ingest is not None:
            self.on_ingest()
        return result


def _check_content_type(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        response = error_response(
            415,
            "unsupported media type",
            f"expected application/json, got {media_type or 'no Content-Type'}",
        )
        raise Rejected(response, "content type")


def _parse(body: bytes) -> WebhookPayload:
    """The payload, or a 400 (not JSON, with line and column) or 422 (naming each field)."""
    try:
        data = parse_json(body)
    except BadJSON as exc:
        raise Rejected(
            error_response(400, "malformed JSON", exc.detail), "malformed JSON"
        ) from None
    try:
        payload = WebhookPayload.model_validate(data)
    except ValidationError as exc:
        raise Rejected(invalid(exc, status=422), "invalid payload") from None
    if payload.version != SUPPORTED_VERSION:
        message = f"unsupported webhook version {payload.version!r}, expected {SUPPORTED_VERSION!r}"
        raise Rejected(_invalid([{"field": "version", "message": message}]), "invalid payload")
    return payload


def _invalid(details: list[dict[str, str]]) -> Response:
    return error_response(422, "invalid payload", details)


def _log(outcome: _Outcome, duration_ms: float) -> None:
    fields = {"status": outcome.status, **outcome.fields, "duration_ms": round(duration_ms, 2)}
    if outcome.error is None:
        log.info("webhook accepted", extra=fields)
    else:
        log.warning("webhook rejected: %s", outcome.error, extra=fields)
