"""The store's tables and their migrations.

Times the router schedules by (receipt, leases, retries) are UNIX seconds as
floats, so both backends compare them the same way. Alert times are kept as
ISO-8601 text inside the alert's JSON.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    inspect,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from router.store.database import Database
from router.store.leases import LeaseStates, open_ids_index, open_rows_index

metadata = MetaData()

_ID = BigInteger().with_variant(Integer, "sqlite")

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", Float, nullable=False),
)

payloads = Table(
    "payloads",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("received_at", Float, nullable=False),
    Column("receiver", Text, nullable=False),
    Column("group_key", Text, nullable=False),
    Column("body", Text, nullable=False),
)

# One row per distinct alert state (fingerprint + status + startsAt [+ endsAt]);
# the row is also the job that triages that state.
alert_events = Table(
    "alert_events",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("state_key", Text, nullable=False, unique=True),
    Column("fingerprint", Text, nullable=False),
    Column("alertname", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("payload_id", _ID, ForeignKey("payloads.id"), nullable=False),
    Column("alert_json", Text, nullable=False),
    Column("receiver", Text, nullable=False),
    Column("group_key", Text, nullable=False),
    Column("external_url", Text, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("state", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("available_at", Float, nullable=False),
    Column("lease_owner", Text),
    Column("lease_until", Float),
    Column("finished_at", Float),
    Column("result_json", Text),
    Column("last_error", Text),
    Index("ix_alert_events_claim", "state", "available_at"),
    Index("ix_alert_events_fingerprint", "fingerprint", "id"),
    Index("ix_alert_events_received", "received_at"),
    Index("ix_alert_events_payload", "payload_id"),
)

JOB_STATES = LeaseStates(waiting="pending", held="running", finished=("done", "failed"))
open_rows_index("ix_alert_events_open_groups", alert_events, JOB_STATES, "group_key")
open_ids_index("ix_alert_events_open", alert_events, JOB_STATES)

# The latest known state of every alert, for look-ups by fingerprint or name.
alerts = Table(
    "alerts",
    metadata,
    Column("fingerprint", Text, primary_key=True),
    Column("alertname", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("last_event_id", _ID, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_alerts_alertname_updated", "alertname", "updated_at"),  # an alert's namesakes
    Index("ix_alerts_last_event", "last_event_id"),
)

# Every remote call a sink will make, written with the triage that produced it.
outbox = Table(
    "outbox",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("key", Text, nullable=False, unique=True),
    Column("event_id", _ID, ForeignKey("alert_events.id"), nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("sink", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("payload_json", Text, nullable=False),
    Column("state", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_owner", Text),
    Column("lease_until", Float),
    Column("created_at", Float, nullable=False),
    Column("done_at", Float),
    Column("last_error", Text),
    Column("response_json", Text),
    # the last attempt's outcome is unknown (timed out, cut off, 5xx): look before sending
    Column("unsure", Integer, nullable=False, server_default="0"),
    Column("lane", Text),  # the channel (or group) a delivery goes to, for fair claiming
    Index("ix_outbox_claim", "state", "next_attempt_at"),
    Index("ix_outbox_order", "fingerprint", "sink", "id"),
    Index("ix_outbox_event", "event_id"),
)

DELIVERY_STATES = LeaseStates(waiting="pending", held="sending", finished=("done", "dead"))
open_rows_index("ix_outbox_open_lanes", outbox, DELIVERY_STATES, "lane")
open_ids_index("ix_outbox_open", outbox, DELIVERY_STATES)

# Where each alert's message lives in a sink (Slack channel + ts, PagerDuty incident id),
# so later state changes edit it and reply in its thread.
messages = Table(
    "messages",
    metadata,
    Column("thread_key", Text, primary_key=True),
    Column("sink", Text, primary_key=True),
    Column("ref_json", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Re-triage requests (a Slack command or button, a PagerDuty webhook event), keyed by
# the request's idempotency key so a replayed request does no work twice.
retriages = Table(
    "retriages",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("key", Text, nullable=False, unique=True),
    Column("source", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("event_id", _ID, ForeignKey("alert_events.id"), nullable=False),
    Column("request_json", Text, nullable=False),
    Column("state", Text, nullable=False, server_default="pending"),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("result_json", Text),
    Column("outcome", Text),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("lease_owner", Text),
    Column("lease_until", Float),
    Index("ix_retriages_fingerprint", "fingerprint", "event_id", "state"),
    Index("ix_retriages_state", "state", "created_at"),
    Index("ix_retriages_event", "event_id"),
)
RETRIAGE_STATES = LeaseStates(waiting="pending", held="running", finished=("done", "failed"))
open_ids_index("ix_retriages_open", retriages, RETRIAGE_STATES)

# PagerDuty incidents of alerts we routed, as their webhooks describe them (for
# ``/triage <incident number>``).
pagerduty_incidents = Table(
    "pagerduty_incidents",
    metadata,
    Column("incident_id", Text, primary_key=True),
    Column("number", BigInteger),
    Column("incident_key", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_pagerduty_incidents_number", "number"),
)

# Rate-limit pauses (a 429's Retry-After) per scope, shared by every replica.
pauses = Table(
    "pauses",
    metadata,
    Column("scope", Text, primary_key=True),
    Column("until", Float, nullable=False),
)

Migration = Callable[[AsyncConnection], Awaitable[None]]


async def _v1(conn: AsyncConnection) -> None:
    await conn.run_sync(
        lambda sync: metadata.create_all(
            sync, tables=[payloads, alert_events, alerts, outbox], checkfirst=True
        )
    )


async def _v2(conn: AsyncConnection) -> None:
    await conn.run_sync(lambda sync: messages.create(sync, checkfirst=True))


async def _v3(conn: AsyncConnection) -> None:
    await conn.run_sync(
        lambda sync: metadata.create_all(
            sync, tables=[retriages, pagerduty_incidents], checkfirst=True
        )
    )


async def _v4(conn: AsyncConnection) -> None:
    """Unsure deliveries, fair lanes, leased re-triage requests, shared rate-limit pauses."""

    def present(sync: Any, table: str) -> set[str]:
        return {column["name"] for column in inspect(sync).get_columns(table)}

    for table, column in [
        ("outbox", "unsure INTEGER NOT NULL DEFAULT 0"),
        ("outbox", "lane TEXT"),
        ("retriages", "attempts INTEGER NOT NULL DEFAULT 0"),
        ("retriages", "lease_owner TEXT"),
        ("retriages", "lease_until FLOAT"),
    ]:
        # earlier migrations create tables from today's definitions: the column may be there
        if column.split()[0] not in await conn.run_sync(present, table):
            await conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column}"))
    await conn.run_sync(lambda sync: pauses.create(sync, checkfirst=True))


async def _create_indexes(conn: AsyncConnection, indexes: dict[str, Table]) -> None:
    """Create the named indexes of today's table definitions, where they are missing."""
    for name, table in indexes.items():
        index = next(i for i in table.indexes if i.name == name)
        await conn.run_sync(lambda sync, index=index: index.create(sync, checkfirst=True))


async def _v5(conn: AsyncConnection) -> None:
    """Indexes by alert state, so retention (``router.store.retention``) never scans."""
    await _create_indexes(conn, {
        "ix_alert_events_received": alert_events, "ix_alert_events_payload": alert_events,
        "ix_alerts_last_event": alerts, "ix_outbox_event": outbox, "ix_retriages_event": retriages,
    })  # fmt: skip


async def _v6(conn: AsyncConnection) -> None:
    """Bounded look-ups in a big backlog: an alert's newest namesakes by index, not by
    sorting every alert of its name; the first unfinished row of each group or lane."""
    await _create_indexes(conn, {
        "ix_alerts_alertname_updated": alerts, "ix_alert_events_open_groups": alert_events,
        "ix_outbox_open_lanes": outbox,
    })  # fmt: skip
    await conn.execute(text("DROP INDEX IF EXISTS ix_alerts_alertname"))


async def _v7(conn: AsyncConnection) -> None:
    """Claims read the unfinished rows in id order from an index of their own, however
    many finished rows retention still keeps (PostgreSQL: ``leases.open_ids_index``)."""
    if conn.dialect.name == "postgresql":
        await _create_indexes(conn, {
            "ix_alert_events_open": alert_events, "ix_outbox_open": outbox,
            "ix_retriages_open": retriages,
        })  # fmt: skip


# Append-only: version N is MIGRATIONS[N - 1]. Never edit a released migration.
MIGRATIONS: list[Migration] = [_v1, _v2, _v3, _v4, _v5, _v6, _v7]
LATEST_VERSION = len(MIGRATIONS)


async def migrate(db: Database) -> int:
    """Bring the schema to the latest version, recording each step; returns the version."""
    async with db.write() as conn:
        if db.is_postgres:
            # Several replicas may start at once: one migrates, the others wait.
            await conn.execute(text("SELECT pg_advisory_xact_lock(72616711)"))
        await conn.run_sync(lambda sync: schema_version.create(sync, checkfirst=True))
        current = (
            await conn.execute(
                select(schema_version.c.version).order_by(schema_version.c.version.desc()).limit(1)
            )
        ).scalar() or 0
        if current > LATEST_VERSION:
            raise RuntimeError(
                f"database schema version {current} is newer than this router "
                f"({LATEST_VERSION}); upgrade the router"
            )
        for version in range(current + 1, LATEST_VERSION + 1):
            await MIGRATIONS[version - 1](conn)
            await conn.execute(
                schema_version.insert().values(version=version, applied_at=time.time())
            )
        return LATEST_VERSION


async def current_version(db: Database) -> int:
    async with db.read() as conn:
        query = select(schema_version.c.version).order_by(schema_version.c.version.desc())
        return (await conn.execute(query.limit(1))).scalar() or 0
