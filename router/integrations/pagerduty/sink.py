"""The PagerDuty sink: an incident per alert through Events API v2, a triage note through REST.

Each alert state gives an ``event`` delivery (``trigger`` when firing, ``resolve`` when
resolved; one ``dedup_key`` per alert, so PagerDuty keeps one incident and the resolve
closes it) and, when the REST API is configured (``api_token`` and ``from``), a
``note`` delivery that posts the findings on the incident. The outbox delivers them
in order, but PagerDuty creates the incident asynchronously: a note that finds no
incident yet is retried a few seconds later.

Routing keys and the API token never enter the outbox: a delivery names its routing
key (``None`` for the default) and the key is looked up when it is sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pagerduty

from router.config import PagerDutySettings
from router.delivery import Delivery, DeliveryError
from router.integrations.pagerduty import render
from router.integrations.pagerduty.client import (
    INCIDENT_RETRY_SECONDS,
    call,
    events_client,
    rest_client,
    tls_verify,
)
from router.redact import Redactor, secret_values
from router.retriage_request import RetriageRequest
from router.store import Store
from router.triage import TriageResult

log = logging.getLogger("router.integrations.pagerduty.sink")

INCIDENT_WAIT_SECONDS = 120.0  # after this, a trigger that made no incident never will
CLOCK_SKEW = timedelta(seconds=30)  # between Prometheus's startsAt and PagerDuty's created_at


class PagerDutySink:
    name = "pagerduty"

    def __init__(
        self, settings: PagerDutySettings, store: Store, secrets: Iterable[str] = ()
    ) -> None:
        self.settings = settings
        self.store = store
        self._redact = Redactor([*secrets, *secret_values(settings)])
        verify = tls_verify(settings.ca_file)
        keys: dict[str | None, str] = {
            name: key.get_secret_value() for name, key in settings.routing_keys.items()
        }
        if settings.routing_key is not None:
            keys[None] = settings.routing_key.get_secret_value()
        self._events = {
            name: events_client(settings.events_url, key, verify, settings.timeout_seconds)
            for name, key in keys.items()
        }
        self._rest: pagerduty.RestApiV2Client | None = None
        if settings.api_token is not None and not settings.from_:
            log.warning("pagerduty.api_token is set but pagerduty.from is not: no incident notes")
        if settings.api_token is not None and settings.from_:
            self._rest = rest_client(
                settings.api_url,
                settings.api_token.get_secret_value(),
                settings.from_,
                verify,
                settings.timeout_seconds,
            )

    @property
    def notes_enabled(self) -> bool:
        return self._rest is not None

    def render(self, result: TriageResult) -> list[Delivery]:
        alert = result.alert
        threads = [alert.fingerprint, result.group_key]
        firing = alert.status == "firing"
        event = render.trigger_event(result) if firing else render.resolve_event(result)
        routing = result.classification.routing.pagerduty_routing_key
        deliveries = [
            Delivery(
                self.name,
                event["event_action"],
                f"pagerduty:event:{alert.state_key}",
                {
                    "routing": routing,
                    "event": event,
                    "threads": threads,
                    "starts_at": alert.startsAt.isoformat(),
                },
            )
        ]
        if firing and self.notes_enabled:
            deliveries.append(self._note(result, f"pagerduty:note:{alert.state_key}"))
        return deliveries

    async def retriage(
        self, result: TriageResult, request: RetriageRequest, *, rerun: bool
    ) -> list[Delivery]:
        """An incident note with the re-run's findings, when notes are configured and the
        alert has an incident (or the request is about one: ``request.note``)."""
        if not self.notes_enabled:
            return []
        alert = result.alert
        if not request.note:
            ref = await self.store.messages.get(alert.fingerprint, self.name)
            known = ref is not None and ref.get("dedup_key") == render.dedup_key(alert)
            if alert.status != "firing" or not known:
                return []
        if rerun:
            head = f"Diagnostics re-run, requested by {request.requested_by}."
        else:
            head = (
                f"Latest findings (of {result.triaged_at:%H:%M UTC}), for {request.requested_by}."
            )
        return [self._note(result, f"pagerduty:retriage-note:{request.key}", head)]

    def retriage_failed(self, request: RetriageRequest, reason: str) -> list[Delivery]:
        return []  # a failed re-run adds no note

    def _note(self, result: TriageResult, key: str, heading: str = "") -> Delivery:
        alert = result.alert
        note = {
            "dedup_key": render.dedup_key(alert),
            "starts_at": alert.startsAt.isoformat(),
            "content": f"{heading}\n{render.note_text(result)}"
            if heading
            else render.note_text(result),
            "threads": [alert.fingerprint, result.group_key],
        }
        return Delivery(self.name, "note", key, note)

    async def send(self, delivery: Delivery) -> dict[str, Any] | None:
        if delivery.action == "note":
            return await self._send_note(delivery)
        return await self._send_event(delivery)

    async def already_delivered(self, delivery: Delivery) -> bool:
        """Events are idempotent by ``dedup_key``; a note is looked for by its marker line."""
        if delivery.action != "note" or self._rest is None:
            return False
        incident = await self._incident(delivery.payload)
        if incident is None:
            return False
        notes = await self._call(
            "rest", "note lookup", self._rest.rget, f"/incidents/{incident['id']}/notes"
        )
        marker = render.note_marker(delivery.key)
        found = any(marker in str(note.get("content", "")) for note in notes)
        log.info(
            "look-up of %s in %d notes of incident %s: %s",
            delivery.key,
            len(notes),
            incident["id"],
            "found" if found else "not there",
            extra={"key": delivery.key, "sink": self.name},
        )
        return found

    async def _call(self, api: str, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """One client call, unless its API (``events`` or ``rest``) is paused by a 429."""
        scope = f"pagerduty:{api}"
        paused = await self.store.pauses.remaining(scope)
        if paused > 0:
            reason = f"PagerDuty {what}: rate limited ({paused:.1f} s to go)"
            raise DeliveryError(reason, retry_after=paused, kind="rate_limited")
        try:
            return await call(what, self._redact, fn, *args, **kwargs)
        except DeliveryError as exc:
            if exc.rate_limited and exc.retry_after is not None:
                await self.store.pauses.hold(scope, exc.retry_after)
            raise

    async def aclose(self) -> None:
        for client in [*self._events.values(), self._rest]:
            if client is not None:
                client.close()

    async def _send_event(self, delivery: Delivery) -> dict[str, Any]:
        payload = delivery.payload
        event, fingerprint = payload["event"], payload["threads"][0]
        action, dedup = event["event_action"], event["dedup_key"]
        routing = payload.get("routing")
        if action == "resolve":
            routing = await self._trigger_routing(fingerprint, dedup, routing)
        else:
            event = render.with_slack_link(event, await self._chat_permalink(payload["threads"]))
        client = self._events_client(routing)
        properties = {k: v for k, v in event.items() if k not in ("event_action", "dedup_key")}
        sent = await self._call(
            "events",
            f"{action} event",
            client.send_event,
            action,
            dedup_key=dedup,
            **properties,
        )
        if action == "trigger":
            ref = {
                "dedup_key": dedup,
                "routing": routing,
                "starts_at": payload["starts_at"],
                "triggered_at": time.time(),
            }
            await self.store.messages.save(fingerprint, self.name, ref)
        return {"dedup_key": sent}

    async def _send_note(self, delivery: Delivery) -> dict[str, Any]:
        assert self._rest is not None, "a note is only rendered when the REST API is configured"
        payload = delivery.payload
        fingerprint = payload["threads"][0]
        ref = await self.store.messages.get(fingerprint, self.name) or {}
        incident = await self._incident(payload)
        if incident is None:
            raise _no_incident(payload, ref)
        permalink = await self._chat_permalink(payload["threads"])
        content = render.finish_note(payload["content"], delivery.key, permalink)
        note = await self._call(
            "rest",
            "note",
            self._rest.rpost,
            f"/incidents/{incident['id']}/notes",
            json={"content": content},
            missing_is_late=True,
        )
        ref.update(incident_id=incident["id"], dedup_key=payload["dedup_key"])
        await self.store.messages.save(fingerprint, self.name, ref)
        return {"incident_id": incident["id"], "note_id": note.get("id")}

    async def _incident(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """This alert state's incident, found by its incident key (the event's dedup_key)."""
        assert self._rest is not None
        dedup = payload["dedup_key"]
        incidents = await self._call(
            "rest",
            "incident lookup",
            self._rest.rget,
            "/incidents",
            # without date_range=all PagerDuty lists only incidents of the last 30 days
            params={"incident_key": dedup, "date_range": "all"},
        )
        return pick_incident(incidents, dedup, datetime.fromisoformat(payload["starts_at"]))

    def _events_client(self, routing: str | None) -> pagerduty.EventsApiV2Client:
        if routing in self._events:
            return self._events[routing]
        if routing is not None and None in self._events:
            log.warning("routing key %r is not configured; using the default routing key", routing)
            return self._events[None]
        wanted = f"routing key {routing!r}" if routing else "a default routing key"
        raise DeliveryError(f"PagerDuty: {wanted} is not configured", permanent=True)

    async def _trigger_routing(self, fingerprint: str, dedup: str, routing: str | None) -> Any:
        """The routing key the trigger went to: a resolve must go to the same service."""
        ref = await self.store.messages.get(fingerprint, self.name)
        if ref and ref.get("dedup_key") == dedup and "routing" in ref:
            return ref["routing"]
        return routing

    async def _chat_permalink(self, threads: list[str]) -> str | None:
        """The alert's chat message, when a sink has posted one (a link is optional)."""
        try:
            return await self.store.messages.permalink(threads)
        except Exception as exc:  # a missing link must not hold up a page
            log.warning("cannot look up the alert's chat message: %s", self._redact(str(exc)))
        return None


def _no_incident(payload: dict[str, Any], ref: dict[str, Any]) -> DeliveryError:
    """No incident for a note: not created *yet* (retry soon), or never going to be.

    The note is delivered after its trigger settled; the note must not hold up the
    alert's later deliveries (its resolve) for long when there is nothing to annotate.
    """
    dedup = payload["dedup_key"]
    if ref.get("dedup_key") != dedup or ref.get("starts_at") != payload["starts_at"]:
        return DeliveryError(
            f"PagerDuty: no incident for {dedup}: its trigger was not delivered", permanent=True
        )
    waited = time.time() - float(ref.get("triggered_at") or 0)
    if waited > INCIDENT_WAIT_SECONDS:
        return DeliveryError(
            f"PagerDuty created no incident for {dedup} within {INCIDENT_WAIT_SECONDS:g} s "
            "of the trigger (suppressed by an event rule?)",
            permanent=True,
        )
    return DeliveryError(
        f"PagerDuty incident for {dedup} is not created yet", retry_after=INCIDENT_RETRY_SECONDS
    )


def pick_incident(
    incidents: list[dict[str, Any]], dedup: str, starts_at: datetime
) -> dict[str, Any] | None:
    """The incident of the alert state that started at ``starts_at``: open ones first, then newest.

    The dedup_key is the same for every firing of one alert: a resolved incident created
    before this firing started belongs to an earlier firing and is not it.
    """
    mine = [
        incident
        for incident in incidents
        if incident.get("incident_key") in (None, dedup)
        and (incident.get("status") != "resolved" or _created(incident) >= starts_at - CLOCK_SKEW)
    ]
    return max(mine, key=lambda i: (i.get("status") != "resolved", _created(i)), default=None)


def _created(incident: dict[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(str(incident.get("created_at")))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
