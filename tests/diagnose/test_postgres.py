"""The PostgreSQL provider against a real server under real saturation.

The server is shared with other test runs, so server-wide counts are bounded
(``>=``) and exact counts are read where only these tests act: this test's
fresh database and the pids of its own sessions.
"""

from __future__ import annotations

import asyncio
import re
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import pytest

from router.alerts import Alert
from router.config import PostgresSettings, PostgresTarget
from router.diagnose.base import AlertContext, Check, ProviderError
from router.diagnose.postgres import APPLICATION, PostgresProvider
from router.triage import Classification
from tests.harness.waiting import eventually
from tests.pg import fresh_database
from tests.procs import free_port

pytestmark = pytest.mark.postgres

SECRET_TOKEN = "tok_9f8e7d6c5b4a39281716"
HOLD_SQL = "BEGIN; UPDATE orders SET total = 11 WHERE id = 1"
SLEEP_SQL = f"SELECT pg_sleep(30) WHERE current_user <> '{SECRET_TOKEN}' -- password = 'hunter2'"


def context(labels: dict[str, str] | None = None, seconds: float = 10) -> AlertContext:
    alert = Alert(
        status="firing",
        labels={"alertname": "T", **(labels or {})},
        startsAt="2026-11-22T03:00:00Z",
    )
    return AlertContext(alert, Classification(), datetime.now(UTC), time.monotonic() + seconds)


def check(kind: str, **params: object) -> Check:
    return Check(kind, "postgres", kind, kind, dict(params))


def provider_for(dsn: str, **settings: object) -> PostgresProvider:
    target = PostgresTarget(name="orders-db", matchers=['service=~"orders.*"'], dsn=dsn)
    return PostgresProvider(PostgresSettings(targets=[target], **settings))


def plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def wait_for(connection: asyncpg.Connection, sql: str, *args: object) -> None:
    """Poll ``sql`` until it returns true: the server, not a sleep, says when we are ready."""
    await eventually(lambda: connection.fetchval(sql, *args), 15, f"{sql} {args}", interval=0.05)


@dataclass
class Saturated:
    url: str
    database: str
    setup: asyncpg.Connection
    pids: dict[str, int] = field(default_factory=dict)


@pytest.fixture
async def saturated() -> AsyncIterator[Saturated]:
    """In a fresh database: 17 'orders-api' and 4 'billing-worker' sessions, one 'report-job'.

    One 'orders-api' session is idle in transaction; 'billing-worker' holds a row lock
    (idle in transaction) that a 'billing-worker' and an 'orders-api' session wait on;
    'report-job' runs a 30 s ``pg_sleep``.
    """
    async with fresh_database() as url:
        url = plain(url)
        setup = await asyncpg.connect(url)
        await setup.execute("CREATE TABLE orders (id int PRIMARY KEY, total int)")
        await setup.execute("INSERT INTO orders VALUES (1, 10)")
        opened: list[asyncpg.Connection] = []
        tasks: list[asyncio.Task[str]] = []

        async def session(app: str) -> asyncpg.Connection:
            opened.append(await asyncpg.connect(url, server_settings={"application_name": app}))
            return opened[-1]

        try:
            state = Saturated(url, url.rsplit("/", 1)[1], setup)
            await _saturate(state, session, tasks)
            yield state
        finally:
            for connection in opened:
                connection.terminate()
            await asyncio.gather(*tasks, return_exceptions=True)
            await setup.close()


async def _saturate(state: Saturated, session, tasks: list) -> None:
    for _ in range(15):
        await session("orders-api")
    for _ in range(2):
        await session("billing-worker")
    idle = await session("orders-api")
    await idle.execute("BEGIN; SELECT * FROM orders")
    holder = await session("billing-worker")
    await holder.execute(HOLD_SQL)
    first, second = await session("billing-worker"), await session("orders-api")
    for waiter in (first, second):
        tasks.append(asyncio.create_task(waiter.execute("UPDATE orders SET total = 12")))
        await wait_for(
            state.setup,
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1",
            waiter.get_server_pid(),
        )
    sleeper = await session("report-job")
    tasks.append(asyncio.create_task(sleeper.execute(SLEEP_SQL)))
    await wait_for(
        state.setup,
        "SELECT state = 'active' AND now() - query_start > interval '1.2 s'"
        " FROM pg_stat_activity WHERE pid = $1",
        sleeper.get_server_pid(),
    )
    state.pids = {
        "idle": idle.get_server_pid(),
        "holder": holder.get_server_pid(),
        "first": first.get_server_pid(),
        "second": second.get_server_pid(),
        "sleeper": sleeper.get_server_pid(),
    }


async def test_connections_name_the_top_application_and_idle_transactions(
    saturated: Saturated,
) -> None:
    outcome = await provider_for(saturated.url).run(
        check("connections"), context({"service": "orders-api"})
    )
    facts = outcome.facts
    assert facts["target"] == "orders-db"
    assert facts["databases"][saturated.database] == 23  # 17 + 4 + report-job + setup
    assert facts["used"] == sum(facts["databases"].values()) >= 23
    assert facts["max_connections"] == int(await saturated.setup.fetchval("SHOW max_connections"))
    usable = facts["max_connections"] - facts["reserved"]
    assert facts["reserved"] >= int(
        await saturated.setup.fetchval("SHOW superuser_reserved_connections")
    )
    assert facts["used_ratio"] == pytest.approx(facts["used"] / usable, abs=1e-4)
    assert facts["available"] == usable - facts["used"]
    apps = {a["application"]: a for a in facts["by_application"]}
    assert apps["orders-api"]["count"] >= 17  # other runs on the server may hold more
    assert apps["orders-api"]["states"]["idle"] >= 15
    assert apps["billing-worker"]["count"] >= 4
    top = facts["by_application"][0]
    assert facts["top_application"] == top["application"]
    assert facts["top_application_share"] == pytest.approx(top["count"] / facts["used"], abs=1e-3)
    assert facts["idle_in_transaction"] >= 2  # the 'orders-api' reader and the lock holder
    assert {"orders-api", "billing-worker"} <= set(facts["idle_in_transaction_applications"])
    assert facts["idle_in_transaction_oldest_seconds"] >= 1
    assert facts["by_state"]["idle"] >= 17
    database = facts["database"]
    assert database == {
        "name": saturated.database,  # the DSN's database, as the alert names none
        "used": 23,
        "limit": usable,  # no CONNECTION LIMIT: the server's
        "used_ratio": round(23 / usable, 4),
        "top_application": "orders-api",
        "top_application_count": 17,
        "top_application_share": round(17 / 23, 4),
    }
    title = outcome.findings[0].title
    assert title.startswith(f"Connections: {facts['used']} of {usable} usable (")
    assert f"— '{top['application'] or '(no application name)'}' holds {top['count']};" in title
    assert title.endswith(f"; database {saturated.database}: 23 of {usable} usable")
    table = outcome.findings[0].evidence[0]
    assert ["orders-api", str(apps["orders-api"]["count"])] in [row[:2] for row in table.rows]
    assert "idle in transaction" in table.columns
    assert "idle in transaction" in outcome.findings[1].title


async def test_the_routers_own_sessions_are_left_out(saturated: Saturated) -> None:
    """Another check's session, busy in the same database, is not counted as a client."""
    provider = provider_for(saturated.url)
    labels = context({"service": "orders"})
    async with provider.session(provider.settings.targets[0], 3) as other:
        busy = asyncio.create_task(other.execute("SELECT pg_sleep(1.5)"))
        await wait_for(
            saturated.setup,
            "SELECT count(*) = 1 FROM pg_stat_activity"
            " WHERE application_name = $1 AND now() - query_start > interval '0.1 s'",
            APPLICATION,
        )
        connections, long_queries, locks = await asyncio.gather(
            provider.run(check("connections"), labels),
            provider.run(check("long_queries", min_seconds=0.05), labels),
            provider.run(check("locks"), labels),
        )
        await busy
    assert connections.facts["databases"][saturated.database] == 23
    assert APPLICATION not in {a["application"] for a in connections.facts["by_application"]}
    assert APPLICATION not in {q["application"] for q in long_queries.facts["queries"]}
    assert APPLICATION not in {c["blocked_application"] for c in locks.facts["chains"]}


async def test_long_queries_name_application_and_seconds_with_secrets_masked(
    saturated: Saturated,
) -> None:
    provider = provider_for(saturated.url)
    outcome = await provider.run(
        check("long_queries", min_seconds=1, limit=10), context({"service": "orders"})
    )
    queries = {q["pid"]: q for q in outcome.facts["queries"]}
    sleeping = queries[saturated.pids["sleeper"]]
    assert sleeping["application"] == "report-job" and sleeping["state"] == "active"
    assert sleeping["seconds"] >= 1.2 and sleeping["wait_event"] == "PgSleep"
    assert sleeping["query"].startswith("SELECT pg_sleep(30) WHERE current_user <> '***'")
    assert SECRET_TOKEN not in sleeping["query"] and "hunter2" not in sleeping["query"]
    waiting = queries[saturated.pids["first"]]
    assert waiting["application"] == "billing-worker" and waiting["wait_event"] == "transactionid"
    assert outcome.facts["count"] >= 3
    assert outcome.facts["longest_seconds"] == outcome.facts["queries"][0]["seconds"]
    assert outcome.findings[0].severity == "warning"
    assert "running for more than 1 s — longest" in outcome.findings[0].title

    limited = await provider.run(
        check("long_queries", min_seconds=1, limit=1), context({"service": "orders"})
    )
    assert len(limited.facts["queries"]) == 1 and limited.facts["count"] >= 3
    quiet = await provider.run(
        check("long_queries", min_seconds=3600), context({"service": "orders"})
    )
    assert quiet.facts == {"target": "orders-db", "count": 0, "longest_seconds": 0.0, "queries": []}
    assert quiet.findings[0].severity == "ok"


async def test_lock_chain_names_the_root_blocker(saturated: Saturated) -> None:
    outcome = await provider_for(saturated.url).run(check("locks"), context({"service": "orders"}))
    facts, pids = outcome.facts, saturated.pids
    ours = [c for c in facts["chains"] if c["blocked_pid"] in (pids["first"], pids["second"])]
    assert {c["blocked_pid"] for c in ours} == {pids["first"], pids["second"]}
    first = next(c for c in ours if c["blocked_pid"] == pids["first"])
    assert first["blocked_application"] == "billing-worker"
    assert first["blocking_pid"] == pids["holder"]
    assert first["blocking_application"] == "billing-worker"
    assert first["blocking_state"] == "idle in transaction"
    assert first["blocking_query"] == HOLD_SQL
    assert first["waiting_seconds"] >= 1
    assert {c["blocked_application"] for c in ours} == {"billing-worker", "orders-api"}
    assert facts["blocked"] >= 2
    assert pids["holder"] in facts["root_blockers"]
    assert pids["first"] not in facts["root_blockers"]
    finding = outcome.findings[0]
    assert (
        f"waiting on locks held by pid {pids['holder']} (billing-worker, idle in transaction for"
        in (finding.title)
    )
    assert finding.evidence[1].text == HOLD_SQL
    root = facts["root_blocker"]
    assert root["pid"] == pids["holder"] and root["waiting"] >= 2
    assert (root["application"], root["state"]) == ("billing-worker", "idle in transaction")
    assert root["query"] == HOLD_SQL and root["transaction_seconds"] >= 1


async def test_ping_reports_latency_and_version() -> None:
    async with fresh_database() as url:
        outcome = await provider_for(url).run(check("ping"), context({"service": "orders"}))
        admin = await asyncpg.connect(plain(url))
        version = await admin.fetchval("SHOW server_version")
        await admin.close()
    facts = outcome.facts
    assert facts["reachable"] is True and facts["error"] is None
    assert facts["server_version"] == version
    assert 0 < facts["latency_ms"] < 1000 and facts["connect_ms"] > 0
    assert outcome.findings[0].severity == "ok"
    assert outcome.findings[0].title.startswith("PostgreSQL orders-db answers SELECT 1 in ")


async def test_the_session_is_read_only_with_a_statement_timeout() -> None:
    async with fresh_database() as url:
        setup = await asyncpg.connect(plain(url))
        await setup.execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
        provider = provider_for(url, statement_timeout_ms=300)
        async with provider.session(provider.settings.targets[0], 3) as session:
            assert await session.fetchval("SHOW statement_timeout") == "300ms"
            assert await session.fetchval("SHOW application_name") == APPLICATION
            for write in ("UPDATE t SET id = 2", "CREATE TABLE nope (id int)", "DELETE FROM t"):
                with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                    await session.execute(write)
            with pytest.raises(asyncpg.QueryCanceledError):
                await session.execute("SELECT pg_sleep(5)")  # cancelled by the server at 0.3 s
        assert await setup.fetchval("SELECT id FROM t") == 1
        await setup.close()


async def test_target_selection_by_matchers_and_param() -> None:
    async with fresh_database() as url:
        dead = f"postgresql://router:pa55word@127.0.0.1:{free_port()}/x"
        settings = PostgresSettings(
            targets=[
                PostgresTarget(name="billing-db", matchers=['service="billing"'], dsn=dead),
                PostgresTarget(name="orders-db", matchers=['{service=~"orders.*"}'], dsn=url),
                PostgresTarget(name="fallback", matchers=['team="db"'], dsn=dead),
            ]
        )
        provider = PostgresProvider(settings)

        async def ping(labels: dict[str, str], **params: object) -> dict:
            return (await provider.run(check("ping", **params), context(labels))).facts

        assert (await ping({"service": "orders-api"}))["reachable"] is True
        billing = await ping({"service": "billing"})
        assert billing["target"] == "billing-db" and billing["reachable"] is False
        assert (await ping({"service": "x", "team": "db"}))["target"] == "fallback"
        chosen = await ping({"service": "billing"}, target="orders-db")
        assert chosen["target"] == "orders-db" and chosen["reachable"] is True
        with pytest.raises(ProviderError, match=r"^no PostgreSQL target matches this alert$"):
            await provider.run(check("connections"), context({"service": "search"}))
        with pytest.raises(ProviderError, match="no target named 'nope'"):
            await provider.run(check("ping", target="nope"), context({"service": "orders"}))


async def test_a_closed_port_fails_fast_without_the_password() -> None:
    provider = provider_for(f"postgresql://router:pa55word@127.0.0.1:{free_port()}/x")
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        await provider.run(check("connections"), context({"service": "orders"}))
    assert time.monotonic() - started < 1
    assert str(info.value) == "PostgreSQL orders-db: connection refused"
    ping = await provider.run(check("ping"), context({"service": "orders"}))
    assert ping.facts["reachable"] is False and ping.facts["error"] == "connection refused"
    assert ping.findings[0].severity == "critical"
    assert ping.findings[0].title == "PostgreSQL orders-db unreachable: connection refused"


async def test_an_unknown_role_is_named_without_the_password() -> None:
    async with fresh_database() as url:
        dsn = re.sub(r"://[^@/]*@", "://nobody:s3cret-pw@", plain(url))
        with pytest.raises(ProviderError) as info:
            await provider_for(dsn).run(check("locks"), context({"service": "orders"}))
    assert str(info.value) == 'PostgreSQL orders-db: role "nobody" does not exist'


class PasswordRejectingServer:
    """A loopback server that speaks just enough of the PostgreSQL protocol to refuse a password."""

    def __init__(self) -> None:
        self.passwords: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        length, code = struct.unpack("!ii", await reader.readexactly(8))
        if code == 80877103:  # SSLRequest: no TLS here
            writer.write(b"N")
            length, code = struct.unpack("!ii", await reader.readexactly(8))
        await reader.readexactly(length - 8)  # startup parameters
        writer.write(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
        kind, length = struct.unpack("!ci", await reader.readexactly(5))
        assert kind == b"p"  # PasswordMessage
        self.passwords.append((await reader.readexactly(length - 4)).rstrip(b"\0"))
        fields = b'SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user "router"\0\0'
        writer.write(b"E" + struct.pack("!i", len(fields) + 4) + fields)
        await writer.drain()
        writer.close()


async def test_a_rejected_password_is_reported_without_it() -> None:
    fake = PasswordRejectingServer()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        provider = provider_for(f"postgresql://router:Xy%40zz-pw@127.0.0.1:{port}/orders")
        with pytest.raises(ProviderError) as info:
            await provider.run(check("connections"), context({"service": "orders"}))
        ping = await provider.run(check("ping"), context({"service": "orders"}))
    assert fake.passwords[0] == b"Xy@zz-pw"  # the server did receive it…
    message = str(info.value)  # …and the error does not repeat it
    assert message == 'PostgreSQL orders-db: password authentication failed for user "router"'
    assert ping.facts["error"] == 'password authentication failed for user "router"'


async def test_a_silent_server_times_out_within_the_alerts_deadline() -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        dsn = f"postgresql://router:pa55word@127.0.0.1:{port}/x"
        started = time.monotonic()
        with pytest.raises(ProviderError, match=r"^PostgreSQL orders-db: timed out after 0\.4 s$"):
            await provider_for(dsn, timeout_seconds=0.4).run(
                check("connections"), context({"service": "orders"})
            )
        assert 0.35 < time.monotonic() - started < 1.5
        started = time.monotonic()
        ping = await provider_for(dsn, timeout_seconds=5).run(
            check("ping"), context({"service": "orders"}, seconds=0.3)
        )
        assert time.monotonic() - started < 1.5
    assert ping.facts["reachable"] is False
    assert re.fullmatch(r"timed out after 0\.[23]\d* s", ping.facts["error"])


def test_query_text_masks_secret_literals_and_is_truncated() -> None:
    provider = provider_for("postgresql://u:topsecret@db/x")
    text = provider.query_text(
        "ALTER ROLE app PASSWORD 'p4ss';\n  SELECT * FROM keys WHERE api_key = 'abc'"
        " AND id = '2f1c7e9a-0b4d-4c8e-9f7a-1d2e3f4a5b6c' AND v = 'sk_live_51Hx9kLmNoPq2RsTuV'"
        " AND dsn = 'postgresql://u:topsecret@db/x' AND name = 'alice'"
    )
    assert text == (
        "ALTER ROLE app PASSWORD '***'; SELECT * FROM keys WHERE api_key = '***'"
        " AND id = '2f1c7e9a-0b4d-4c8e-9f7a-1d2e3f4a5b6c' AND v = '***'"
        " AND dsn = '***' AND name = 'alice'"
    )
    long = provider.query_text("SELECT " + ", ".join(f"c{i}" for i in range(200)))
    assert len(long) == 300 and long.endswith("…")
