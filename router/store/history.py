"""An alert's own history: earlier firings, how long they took to resolve, the last verdict.

Read at triage time from ``alert_events`` with bounded, indexed queries only: the
alert's fingerprint (``ix_alert_events_fingerprint``), and for a fingerprint never seen
before, the same alert name (``ix_alerts_alertname_updated``) in the same namespace or service.
Each query reads at most ``MAX_ROWS`` rows, however large the store grows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import msgspec
from sqlalchemy import ColumnElement, Connection, Select, bindparam, desc, select, true

from router.alerts import Alert
from router.store.database import Clock, Database
from router.store.schema import alert_events, alerts
from router.triage import AlertHistory

DAYS = 7
MAX_ROWS = 200  # newest event rows read per query
MAX_NAMESAKES = 20  # other fingerprints of the same alert name looked at
SCOPE_LABELS = ("namespace", "service")


class _Stored(msgspec.Struct):
    """The part of a stored alert the history reads (the rest of its JSON is skipped)."""

    status: str = ""
    startsAt: str = ""
    endsAt: str | None = None
    labels: dict[str, str] = {}


_decode = msgspec.json.Decoder(_Stored).decode


@dataclass(frozen=True)
class _State:
    """One stored state of an earlier firing: only what the history needs of it."""

    id: int
    fingerprint: str
    status: str
    starts_at: str
    ends_at: str | None
    labels: dict[str, str]

    @classmethod
    def of(cls, id_: int, fingerprint: str, alert_json: str) -> _State:
        try:
            alert = _decode(alert_json)
        except msgspec.DecodeError:  # not as this version stores it: an episode without details
            alert = _Stored()
        return cls(id_, fingerprint, alert.status, alert.startsAt, alert.endsAt, alert.labels)


class History:
    def __init__(self, db: Database, clock: Clock = time.time, days: int = DAYS) -> None:
        self.db = db
        self.clock = clock
        self.days = days
        self._namesake_states = _NAMESAKE_STATES_POSTGRES if db.is_postgres else _NAMESAKE_STATES

    async def of(self, alert: Alert) -> AlertHistory | None:
        """Earlier firings of this alert within ``days``, or None when there are none
        (its queries run together, in one hand-off to the database)."""
        since = self.clock() - self.days * 86400
        return await self.db.run_read(lambda conn: self._read(conn, alert, since))

    def _read(self, conn: Connection, alert: Alert, since: float) -> AlertHistory | None:
        own = {"fingerprint": alert.fingerprint, "since": since}
        episodes = _episodes(_states(conn, _OWN_STATES, own), alert)
        scope = ""
        if not episodes and (scope := _scope(alert)):
            states = _states(conn, self._namesake_states, {**own, "alertname": alert.alertname})
            episodes = _episodes([s for s in states if _same_scope(s, alert)], alert)
        if not episodes:
            return None
        durations = [m for e in episodes if (m := _minutes(e)) is not None]
        return AlertHistory(
            days=self.days,
            earlier=len(episodes),
            minutes_to_resolve=durations,
            last_verdict=_verdict(conn, episodes[0]),
            scope=f"{alert.alertname} in {scope}" if scope else "",
        )


def _newest_states(condition: ColumnElement[bool]) -> Select:
    """The newest ``MAX_ROWS`` states matching ``condition`` since ``:since``, without their
    triage results (the one verdict shown is read on its own: results are most of a row)."""
    return (
        select(alert_events.c.id, alert_events.c.fingerprint, alert_events.c.alert_json)
        .where(condition, alert_events.c.received_at >= bindparam("since"))
        .order_by(desc(alert_events.c.id))
        .limit(MAX_ROWS)
    )


# Built once: the per-alert work is binding ``:fingerprint``, ``:alertname`` and ``:since``.
_OWN_STATES = _newest_states(alert_events.c.fingerprint == bindparam("fingerprint"))
# The other fingerprints of the same alert name, most recently updated first.
_NAMESAKES = (
    select(alerts.c.fingerprint)
    .where(
        alerts.c.alertname == bindparam("alertname"),
        alerts.c.fingerprint != bindparam("fingerprint"),
    )
    .order_by(desc(alerts.c.updated_at))
    .limit(MAX_NAMESAKES)
)
_NAMESAKE_STATES = _newest_states(alert_events.c.fingerprint.in_(_NAMESAKES.scalar_subquery()))


def _namesake_states_lateral() -> Select:
    """The same rows on PostgreSQL: the newest states of each namesake in turn (a
    ``LATERAL`` join, each an index range of ``(fingerprint, id)``). PostgreSQL plans
    the ``IN`` form above from its statistics, and on a table grown since its last
    ``ANALYZE`` (a new database in its first storm) it scanned every state since
    ``:since`` instead, 7 ms per alert at 10,000 states."""
    namesakes = _NAMESAKES.subquery("namesakes")
    newest = _newest_states(alert_events.c.fingerprint == namesakes.c.fingerprint).lateral("newest")
    return (
        select(newest.c.id, newest.c.fingerprint, newest.c.alert_json)
        .select_from(namesakes.join(newest, true()))
        .order_by(desc(newest.c.id))
        .limit(MAX_ROWS)
    )


_NAMESAKE_STATES_POSTGRES = _namesake_states_lateral()
_NEWEST_RESULT = (
    select(alert_events.c.result_json)
    .where(
        alert_events.c.id.in_(bindparam("ids", expanding=True)),
        alert_events.c.result_json.is_not(None),
    )
    .order_by(desc(alert_events.c.id))
    .limit(1)
)


def _states(conn: Connection, query: Select, params: dict[str, object]) -> list[_State]:
    return [_State.of(*row) for row in conn.execute(query, params)]


def _verdict(conn: Connection, episode: list[_State]) -> str | None:
    """The top verdict of the newest triaged firing state of ``episode``."""
    firing = [s.id for s in episode if s.status == "firing"]
    if not firing:
        return None
    result = conn.execute(_NEWEST_RESULT, {"ids": firing}).scalar()
    return _top_verdict(result) if result else None


def _episodes(states: Iterable[_State], current: Alert) -> list[list[_State]]:
    """Earlier firings, newest first: states grouped by fingerprint and ``startsAt``."""
    grouped: dict[tuple[str, str], list[_State]] = {}
    now = (current.fingerprint, current.startsAt.isoformat())
    for state in states:  # newest first
        key = (state.fingerprint, _instant(state.starts_at))
        if key != now:
            grouped.setdefault(key, []).append(state)
    return list(grouped.values())


def _minutes(episode: list[_State]) -> float | None:
    """How long a firing took to resolve, when it did."""
    for state in episode:
        if state.status == "resolved" and state.ends_at:
            started, ended = _parsed(state.starts_at), _parsed(state.ends_at)
            if started is not None and ended is not None:
                return (ended - started).total_seconds() / 60
    return None


def _parsed(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _instant(text: str) -> str:
    """``startsAt`` as ``Alert`` writes it, so a stored state compares with the current one."""
    parsed = _parsed(text)
    return parsed.isoformat() if parsed is not None else text


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


def _same_scope(state: _State, alert: Alert) -> bool:
    return all(state.labels.get(k) == alert.labels.get(k) for k in SCOPE_LABELS)
