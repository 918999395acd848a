"""An alert's own history: earlier firings, how long they took to resolve, the last verdict.

Read at triage time from ``alert_events`` with bounded, indexed queries only: the
alert's fingerprint (``ix_alert_events_fingerprint``), and for a fingerprint never seen
before, the same alert name (``ix_alerts_alertname``) in the same namespace or service.
Each query reads at most ``MAX_ROWS`` rows, however large the store grows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import desc, select

from router.alerts import Alert
from router.store.database import Database
from router.store.jobs import Clock
from router.store.schema import alert_events, alerts
from router.triage import AlertHistory

DAYS = 7
MAX_ROWS = 200  # newest event rows read per query
MAX_NAMESAKES = 20  # other fingerprints of the same alert name looked at
SCOPE_LABELS = ("namespace", "service")


@dataclass(frozen=True)
class _Episode:
    """One firing: its rows' alert states and the newest triage result among them."""

    minutes: float | None
    verdict: str | None


class History:
    def __init__(self, db: Database, clock: Clock = time.time, days: int = DAYS) -> None:
        self.db = db
        self.clock = clock
        self.days = days

    async def of(self, alert: Alert) -> AlertHistory | None:
        """Earlier firings of this alert within ``days``, or None when there are none."""
        since = self.clock() - self.days * 86400
        rows = await self._rows(alert_events.c.fingerprint == alert.fingerprint, since)
        episodes = _episodes(rows, alert)
        scope = ""
        if not episodes and (scope := _scope(alert)):
            namesakes = await self._namesakes(alert)
            rows = await self._rows(alert_events.c.fingerprint.in_(namesakes), since)
            episodes = _episodes((r for r in rows if _same_scope(r, alert)), alert)
        if not episodes:
            return None
        durations = [e.minutes for e in episodes if e.minutes is not None]
        return AlertHistory(
            days=self.days,
            earlier=len(episodes),
            minutes_to_resolve=durations,
            last_verdict=episodes[0].verdict,
            scope=f"{alert.alertname} in {scope}" if scope else "",
        )

    async def _rows(self, condition: object, since: float) -> list:
        query = (
            select(
                alert_events.c.fingerprint, alert_events.c.alert_json, alert_events.c.result_json
            )
            .where(condition, alert_events.c.received_at >= since)
            .order_by(desc(alert_events.c.id))
            .limit(MAX_ROWS)
        )
        async with self.db.read() as conn:
            return list((await conn.execute(query)).all())

    async def _namesakes(self, alert: Alert) -> list[str]:
        query = (
            select(alerts.c.fingerprint)
            .where(alerts.c.alertname == alert.alertname, alerts.c.fingerprint != alert.fingerprint)
            .order_by(desc(alerts.c.updated_at))
            .limit(MAX_NAMESAKES)
        )
        async with self.db.read() as conn:
            return list((await conn.execute(query)).scalars())


def _episodes(rows: Iterable, current: Alert) -> list[_Episode]:
    """Earlier firings, newest first: rows grouped by fingerprint and ``startsAt``."""
    grouped: dict[tuple[str, str], list] = {}
    for row in rows:  # newest first
        alert = Alert.model_validate_json(row.alert_json)
        key = (row.fingerprint, alert.startsAt.isoformat())
        if key != (current.fingerprint, current.startsAt.isoformat()):
            grouped.setdefault(key, []).append((alert, row.result_json))
    return [_episode(states) for states in grouped.values()]


def _episode(states: list) -> _Episode:
    minutes = next(
        (
            (a.endsAt - a.startsAt).total_seconds() / 60
            for a, _ in states
            if a.status == "resolved" and a.endsAt is not None
        ),
        None,
    )
    firing = [result for a, result in states if a.status == "firing" and result]
    return _Episode(minutes, _top_verdict(firing[0]) if firing else None)


def _top_verdict(result_json: str) -> str | None:
    """The first verdict of a stored triage result, as ``finding title → verdict``."""
    try:
        findings = json.loads(result_json).get("findings", [])
    except ValueError:
        return None
    for finding in findings:
        if finding.get("verdict"):
            return f"{finding['title']} → {finding['verdict']['summary']}"
    return None


def _scope(alert: Alert) -> str:
    """``namespace shop`` or ``service checkout``: where a namesake counts as the same alert."""
    return ", ".join(f"{k} {alert.labels[k]}" for k in SCOPE_LABELS if alert.labels.get(k))


def _same_scope(row: object, alert: Alert) -> bool:
    labels = json.loads(row.alert_json).get("labels", {})  # type: ignore[attr-defined]
    return all(labels.get(k) == alert.labels.get(k) for k in SCOPE_LABELS)
