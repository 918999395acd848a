"""One group commit's rows, and the statements that write them on each backend.

The batch is written with the driver's own batching, never row by row: on SQLite
three ``executemany`` calls and two small reads inside the writer's ``BEGIN
IMMEDIATE``; on PostgreSQL one statement (data-modifying CTEs over arrays), which
asyncpg prepares once per connection. Each alert state is written once, with its
alert; the payload row keeps the webhook's envelope (everything but its alerts).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection


@dataclass(frozen=True)
class EventRow:
    state_key: str
    fingerprint: str
    alertname: str
    status: str
    payload: int  # the webhook's position in the batch
    alert_json: str


@dataclass(frozen=True)
class PayloadRow:
    receiver: str
    group_key: str
    external_url: str
    envelope: str


@dataclass
class Batch:
    """The rows of one group commit: its webhooks in order, each new alert state once."""

    now: float
    payloads: list[PayloadRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)


@dataclass(frozen=True)
class Written:
    payload_ids: list[int]  # in the batch's order
    inserted: dict[str, int]  # state_key → event id, for the states not stored before


def write_sqlite(conn: Connection, batch: Batch) -> Written:
    """Inside the writer's transaction, which holds SQLite's write lock: ids cannot race."""
    cursor = conn.connection.cursor()  # the driver's own: no per-statement work above it
    try:
        return _write_sqlite(cursor, batch)
    finally:
        cursor.close()


def _write_sqlite(cursor: Any, batch: Batch) -> Written:
    first = cursor.execute("SELECT coalesce(max(id), 0) + 1 FROM payloads").fetchone()[0]
    now = batch.now
    cursor.executemany(
        "INSERT INTO payloads (id, received_at, receiver, group_key, body) VALUES (?, ?, ?, ?, ?)",
        [
            (first + i, now, p.receiver, p.group_key, p.envelope)
            for i, p in enumerate(batch.payloads)
        ],
    )
    if batch.events:
        cursor.executemany(_SQLITE_EVENTS, list(_event_params(batch, first)))
    last = first + len(batch.payloads) - 1
    # A row with one of this batch's payload ids can only have been inserted just now.
    new = cursor.execute(
        "SELECT id, state_key, fingerprint, alertname, status FROM alert_events"
        " WHERE payload_id BETWEEN ? AND ? ORDER BY id",
        (first, last),
    ).fetchall()
    latest = {fingerprint: (fingerprint, name, status, id_, now)
              for id_, _, fingerprint, name, status in new}  # fmt: skip
    if latest:  # the newest state of each alert wins
        cursor.executemany(_SQLITE_LATEST, list(latest.values()))
    return Written(list(range(first, last + 1)), {key: id_ for id_, key, *_ in new})


def _event_params(batch: Batch, first_id: int) -> Iterable[tuple]:
    for e in batch.events:
        payload = batch.payloads[e.payload]
        yield (
            e.state_key, e.fingerprint, e.alertname, e.status, first_id + e.payload, e.alert_json,
            payload.receiver, payload.group_key, payload.external_url, batch.now, batch.now,
        )  # fmt: skip


_EVENT_COLUMNS = (
    "state_key, fingerprint, alertname, status, payload_id, alert_json,"
    " receiver, group_key, external_url, received_at, available_at"
)
_SQLITE_EVENTS = (
    f"INSERT INTO alert_events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (state_key) DO NOTHING"
)
_LATEST_UPDATE = (
    " ON CONFLICT (fingerprint) DO UPDATE SET alertname = excluded.alertname,"
    " status = excluded.status, last_event_id = excluded.last_event_id,"
    " updated_at = excluded.updated_at WHERE alerts.last_event_id < excluded.last_event_id"
)
_SQLITE_LATEST = (
    "INSERT INTO alerts (fingerprint, alertname, status, last_event_id, updated_at)"
    " VALUES (?, ?, ?, ?, ?)" + _LATEST_UPDATE
)


def write_postgres(conn: Connection, batch: Batch) -> Written:
    """The whole batch in one prepared statement; returns each payload's id and the new states."""
    payloads, events = batch.payloads, batch.events
    params = (
        batch.now,
        [p.receiver for p in payloads], [p.group_key for p in payloads],
        [p.external_url for p in payloads], [p.envelope for p in payloads],
        [e.state_key for e in events], [e.fingerprint for e in events],
        [e.alertname for e in events], [e.status for e in events],
        [e.payload + 1 for e in events], [e.alert_json for e in events],
    )  # fmt: skip
    rows = conn.exec_driver_sql(_POSTGRES_BATCH, params).all()
    payload_ids = [0] * len(payloads)
    inserted: dict[str, int] = {}
    for position, row_id, state_key in rows:
        if state_key is None:
            payload_ids[position - 1] = row_id
        else:
            inserted[state_key] = row_id
    return Written(payload_ids, inserted)


# Payload ids are drawn first (``nextval`` in order of position), so each event
# finds its payload by position; events are inserted in arrival order, so a later
# state of the same alert gets the larger id and becomes its latest.
_POSTGRES_BATCH = f"""
WITH new_payloads AS MATERIALIZED (
    SELECT nextval(pg_get_serial_sequence('payloads', 'id')) AS id, p.*
    FROM unnest($2::text[], $3::text[], $4::text[], $5::text[])
        WITH ORDINALITY AS p(receiver, group_key, external_url, envelope, position)
    ORDER BY p.position
), stored_payloads AS (
    INSERT INTO payloads (id, received_at, receiver, group_key, body)
    SELECT id, $1, receiver, group_key, envelope FROM new_payloads
), new_events AS (
    INSERT INTO alert_events ({_EVENT_COLUMNS})
    SELECT e.state_key, e.fingerprint, e.alertname, e.status, p.id, e.alert_json,
           p.receiver, p.group_key, p.external_url, $1, $1
    FROM unnest($6::text[], $7::text[], $8::text[], $9::text[], $10::int8[], $11::text[])
        WITH ORDINALITY AS e(state_key, fingerprint, alertname, status, payload, alert_json, n)
    JOIN new_payloads p ON p.position = e.payload
    ORDER BY e.n
    ON CONFLICT (state_key) DO NOTHING
    RETURNING id, state_key, fingerprint, alertname, status
), latest AS (
    INSERT INTO alerts (fingerprint, alertname, status, last_event_id, updated_at)
    SELECT DISTINCT ON (fingerprint) fingerprint, alertname, status, id, $1
    FROM new_events ORDER BY fingerprint, id DESC
    {_LATEST_UPDATE}
)
SELECT position, id, NULL::text AS state_key FROM new_payloads
UNION ALL
SELECT NULL, id, state_key FROM new_events
"""
