"""``POST /alertmanager``: authenticate, validate, persist, acknowledge.

The checks run in this order, each with its own status and JSON body: credentials
(401), content type (415), size (413), JSON syntax (400), payload schema (422),
then the store (503 when unavailable or when the service is draining). Only a
payload that is durably stored gets its 202. Alertmanager retries a 5xx and drops
a 4xx for good, so anything transient is a 5xx.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_args

import msgspec
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from router.alerts import Status, WebhookPayload
from router.jsonbody import BadJSON, parse_json
from router.metrics import Metrics
from router.store import IngestResult, Store, StoreUnavailable
from router.web.auth import WebhookAuth
from router.web.body import read_body
from router.web.drain import refuse_when_draining
from router.web.errors import HTTPError, invalid, unavailable

log = logging.getLogger("router.web.alertmanager")

SUPPORTED_VERSION = "4"


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
        self._received = {s: metrics.alerts_received.labels(s) for s in get_args(Status)}

    async def post(self, request: Request) -> Response:
        started = time.perf_counter()
        outcome = _Outcome()
        try:
            response = await self._handle(request, outcome)
        except HTTPError as rejected:  # answered by router.web.errors.http_exception
            outcome.status, outcome.error = rejected.status_code, rejected.reason
            _log(outcome, (time.perf_counter() - started) * 1000)
            raise
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
        body = await read_body(request, self.max_body_bytes)
        payload = _parse(body)
        outcome.fields.update(
            receiver=payload.receiver, group_key=payload.groupKey, alerts=len(payload.alerts)
        )
        refuse_when_draining(request)
        result = await self._ingest(payload)
        outcome.fields.update(new=result.new, duplicates=result.duplicates)
        ack = {
            "status": "accepted",
            "alerts": len(payload.alerts),
            "new": result.new,
            "duplicates": result.duplicates,
        }
        return Response(msgspec.json.encode(ack), 202, media_type="application/json")

    def _authenticate(self, request: Request) -> None:
        if not self.auth.check(request.headers.get("authorization")):
            raise HTTPError(
                401,
                "unauthorized",
                "missing or invalid credentials",
                headers={"WWW-Authenticate": self.auth.challenge()},
            )

    async def _ingest(self, payload: WebhookPayload) -> IngestResult:
        try:
            result = await self.store.ingest(payload)
        except StoreUnavailable as exc:
            raise unavailable("store unavailable, retry later", reason=str(exc)) from exc
        for status, count in collections.Counter(a.status for a in payload.alerts).items():
            self._received[status].inc(count)
        if result.duplicates:
            self.metrics.alert_duplicates.inc(result.duplicates)
        if result.new and self.on_ingest is not None:
            self.on_ingest()
        return result


def _check_content_type(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise HTTPError(
            415,
            "unsupported media type",
            f"expected application/json, got {media_type or 'no Content-Type'}",
            reason="content type",
        )


def _parse(body: bytes) -> WebhookPayload:
    """The payload, or a 400 (not JSON, with line and column) or 422 (naming each field)."""
    try:
        data = parse_json(body)
    except BadJSON as exc:
        raise HTTPError(400, "malformed JSON", exc.detail) from None
    try:
        payload = WebhookPayload.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc, status=422) from None
    if payload.version != SUPPORTED_VERSION:
        message = f"unsupported webhook version {payload.version!r}, expected {SUPPORTED_VERSION!r}"
        raise HTTPError(422, "invalid payload", [{"field": "version", "message": message}])
    return payload


def _log(outcome: _Outcome, duration_ms: float) -> None:
    fields = {"status": outcome.status, **outcome.fields, "duration_ms": round(duration_ms, 2)}
    if outcome.error is None:
        log.info("webhook accepted", extra=fields)
    else:
        log.warning("webhook rejected: %s", outcome.error, extra=fields)
