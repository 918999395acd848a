"""Finding stored alerts again: by fingerprint (or a prefix), by name, by PagerDuty incident.

Used by re-triage (``router.retriage``): every query reads the ``alerts`` table (the
latest state of each alert) joined to that state's ``alert_events`` row, which holds
the alert itself and the result of its last triage.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import desc, func, select

from router.alerts import Alert
from router.store.database import Clock, Database
from router.store.schema import alert_events, alerts, messages, pagerduty_incidents, retriages

_INCIDENT_ID = re.compile(r"[A-Z0-9]{4,32}")


@dataclass(frozen=True)
class AlertSummary:
    """One alert's latest state, as listed or matched."""

    fingerprint: str
    alertname: str
    status: str
    event_id: int
    updated_at: float
    starts_at: datetime
    category: str | None  # None while its first triage has not finished


@dataclass(frozen=True)
class StoredState:
    """An alert's latest state, and the newest findings known for it."""

    event_id: int
    alert: Alert
    receiver: str
    group_key: str
    external_url: str
    result_json: str | None  # the newest triage of this state (the job's or a re-triage's)
    last_run_at: float | None


class Lookup:
    def __init__(self, db: Database, clock: Clock = time.time) -> None:
        self.db = db
        self.clock = clock

    async def by_fingerprint(self, fingerprint: str) -> AlertSummary | None:
        found = await self._summaries(alerts.c.fingerprint == fingerprint, limit=1)
        return found[0] if found else None

    async def by_prefix(self, prefix: str, limit: int = 10) -> list[AlertSummary]:
        """Alerts whose fingerprint starts with ``prefix`` (hex digits only)."""
        if not re.fullmatch(r"[0-9a-f]+", prefix):
            return []
        return await self._summaries(alerts.c.fingerprint.like(f"{prefix}%"), limit=limit)

    async def by_name(self, alertname: str, limit: int = 10) -> list[AlertSummary]:
        """Alerts of this name (any case), firing ones first, newest first."""
        condition = func.lower(alerts.c.alertname) == alertname.lower()
        return await self._summaries(condition, limit=limit)

    async def active(self, limit: int = 50) -> list[AlertSummary]:
        """Firing alerts, newest first."""
        return await self._summaries(alerts.c.status == "firing", limit=limit)

    async def _summaries(self, condition: Any, limit: int) -> list[AlertSummary]:
        query = (
            select(
                alerts.c.fingerprint,
                alerts.c.alertname,
                alerts.c.status,
                alerts.c.last_event_id,
                alerts.c.updated_at,
                alert_events.c.alert_json,
                alert_events.c.result_json,
            )
            .join(alert_events, alert_events.c.id == alerts.c.last_event_id)
            .where(condition)
            .order_by(alerts.c.status != "firing", desc(alerts.c.updated_at), alerts.c.fingerprint)
            .limit(limit)
        )
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [_summary(row) for row in rows]

    async def latest_state(self, fingerprint: str) -> StoredState | None:
        """The alert's latest stored state, with the newest triage result of that state."""
        query = (
            select(alert_events)
            .join(alerts, alerts.c.last_event_id == alert_events.c.id)
            .where(alerts.c.fingerprint == fingerprint)
        )
        newest_retriage = (
            select(retriages.c.result_json, retriages.c.finished_at)
            .where(
                retriages.c.fingerprint == fingerprint,
                retriages.c.state == "done",
                retriages.c.result_json.is_not(None),
            )
            .order_by(desc(retriages.c.finished_at))
        )
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
            if row is None:
                return None
            again = (
                await conn.execute(newest_retriage.where(retriages.c.event_id == row.id).limit(1))
            ).first()
        result_json, last_run_at = row.result_json, row.finished_at
        if again is not None and (last_run_at is None or again.finished_at > last_run_at):
            result_json, last_run_at = again.result_json, again.finished_at
        return StoredState(
            event_id=row.id,
            alert=Alert.model_validate_json(row.alert_json),
            receiver=row.receiver,
            group_key=row.group_key,
            external_url=row.external_url,
            result_json=result_json,
            last_run_at=last_run_at,
        )

    # -- PagerDuty incidents -------------------------------------------------------

    async def known(self, fingerprint: str | None) -> bool:
        """Whether an alert with this fingerprint is stored."""
        return bool(fingerprint) and await self.by_fingerprint(fingerprint or "") is not None

    async def remember_incident(
        self, incident_id: str, number: int | None, incident_key: str, fingerprint: str
    ) -> None:
        stmt = self.db.insert(pagerduty_incidents).values(
            incident_id=incident_id,
            number=number,
            incident_key=incident_key,
            fingerprint=fingerprint,
            updated_at=self.clock(),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["incident_id"],
            set_={"number": stmt.excluded.number, "updated_at": stmt.excluded.updated_at},
        )
        async with self.db.write() as conn:
            await conn.execute(stmt)

    async def by_incident_number(self, number: int) -> str | None:
        query = select(pagerduty_incidents.c.fingerprint).where(
            pagerduty_incidents.c.number == number
        )
        async with self.db.read() as conn:
            return (await conn.execute(query.limit(1))).scalar()

    async def by_incident_id(self, incident_id: str) -> str | None:
        """From a PagerDuty webhook we saw, else from the incident the PagerDuty sink noted."""
        if not _INCIDENT_ID.fullmatch(incident_id):
            return None
        seen = select(pagerduty_incidents.c.fingerprint).where(
            pagerduty_incidents.c.incident_id == incident_id
        )
        noted = select(messages.c.thread_key, messages.c.ref_json).where(
            messages.c.sink == "pagerduty",
            messages.c.ref_json.like(f'%"{incident_id}"%'),
        )
        async with self.db.read() as conn:
            found = (await conn.execute(seen.limit(1))).scalar()
            if found is not None:
                return found
            for row in await conn.execute(noted.limit(20)):
                if json.loads(row.ref_json).get("incident_id") == incident_id:
                    return str(row.thread_key)
        return None


def _summary(row: Any) -> AlertSummary:
    alert = Alert.model_validate_json(row.alert_json)
    category = None
    if row.result_json:
        category = json.loads(row.result_json).get("classification", {}).get("category")
    return AlertSummary(
        fingerprint=row.fingerprint,
        alertname=row.alertname,
        status=row.status,
        event_id=row.last_event_id,
        updated_at=row.updated_at,
        starts_at=alert.startsAt,
        category=category,
    )
