"""``POST /pagerduty/webhook``: PagerDuty webhooks (v3) that ask for a fresh incident note.

The signature (``X-PagerDuty-Signature``) is checked on the raw body before it is
parsed; without a configured secret, or with no matching signature, the answer is 401.
``incident.triggered``, ``incident.reopened`` and ``incident.acknowledged`` for an
incident whose key is one of our dedup keys become a re-triage request, recorded once
per event id (a replay is answered 200 and does nothing), and answered at once: the
note is written in the background. Every other event is accepted and ignored.
"""

from __future__ import annotations

import hashlib
import logging

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from router.config import PagerDutySettings
from router.integrations.pagerduty.payloads import (
    PagerDutyEvent,
    PagerDutyIncident,
    PagerDutyWebhookBody,
)
from router.integrations.pagerduty.render import fingerprint_of
from router.integrations.pagerduty.signature import PagerDutySignature
from router.jsonbody import BadJSON, parse_json
from router.retriage import Request as Retriage
from router.retriage import Retriager
from router.store import Store, StoreUnavailable
from router.web.body import read_body
from router.web.drain import refuse_when_draining
from router.web.errors import HTTPError, invalid, unavailable

log = logging.getLogger("router.integrations.pagerduty.webhook")

HANDLED = frozenset({"incident.triggered", "incident.reopened", "incident.acknowledged"})


class PagerDutyWebhook:
    def __init__(
        self,
        settings: PagerDutySettings,
        store: Store,
        retriager: Retriager | None,
        max_body_bytes: int,
    ) -> None:
        self.signature = PagerDutySignature.from_settings(settings)
        self.max_age = settings.findings_max_age_seconds
        self.store = store
        self.retriager = retriager
        self.max_body_bytes = max_body_bytes

    async def post(self, request: Request) -> Response:
        if not self.signature.configured:
            raise HTTPError(401, "unauthorized", "pagerduty.webhook_secret is not configured")
        body = await read_body(request, self.max_body_bytes)
        if not self.signature.valid(body, request.headers.get("x-pagerduty-signature")):
            log.warning("PagerDuty webhook with no matching signature refused")
            raise HTTPError(401, "unauthorized", "no matching X-PagerDuty-Signature")
        try:
            event = PagerDutyWebhookBody.model_validate(parse_json(body)).event
        except BadJSON as exc:
            raise HTTPError(400, "malformed JSON", exc.detail) from None
        except ValidationError as exc:
            raise invalid(exc, "malformed event") from None
        refuse_when_draining(request)
        try:
            return await self._handle(event, body)
        except StoreUnavailable as exc:
            log.warning("PagerDuty webhook: %s", exc)
            raise unavailable("store unavailable, retry later") from None

    async def _handle(self, event: PagerDutyEvent, body: bytes) -> Response:
        event_type = event.event_type
        if not event_type.startswith("incident."):
            return _ignored(event_type, "not an incident event")
        try:
            incident = PagerDutyIncident.model_validate(event.data)
        except ValidationError as exc:
            raise invalid(exc, "malformed incident") from None
        lookup = self.store.lookup
        incident_key = incident.incident_key or ""
        fingerprint = fingerprint_of(incident_key)
        if fingerprint is None or not await lookup.known(fingerprint):
            return _ignored(event_type, "not an incident of an alert routed here")
        if incident.id is not None:
            await lookup.remember_incident(incident.id, incident.number, incident_key, fingerprint)
        if event_type not in HANDLED:
            return _ignored(event_type, "no note for this event type")
        alert = await lookup.by_fingerprint(fingerprint)
        if alert is None or self.retriager is None:
            return _ignored(event_type, "re-triage is not running")
        event_id = event.id or hashlib.sha256(body).hexdigest()[:32]
        retriage = Retriage(
            key=f"pagerduty:{event_id}",
            source="pagerduty",
            requested_by=f"PagerDuty {event_type}",
            note=True,
            max_age=self.max_age,
        )
        if not await self.retriager.submit(retriage, alert):
            return JSONResponse({"status": "duplicate", "event": event_id})
        log.info("PagerDuty %s: incident note queued", event_type, extra={"key": retriage.key})
        return JSONResponse({"status": "accepted", "event": event_id}, status_code=202)


def _ignored(event_type: str, reason: str) -> JSONResponse:
    return JSONResponse({"status": "ignored", "event_type": event_type, "reason": reason})
