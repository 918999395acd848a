"""The PostgreSQL provider against a real server under real saturation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from router.alerts import Alert
from router.config import PostgresSettings, PostgresTarget
from router.diagnose.base import AlertContext, Check, ProviderError
from router.diagnose.postgres import PostgresProvider
from router.triage import Classification
from tests.pg import fresh_database
from tests.procs import free_port

pytestmark = pytest.mark.postgres


def context(labels: dict[str, str] | None = None) -> AlertContext:
    alert = Alert(
        status="firing",
        labels={"alertname": "T", **(labels or {})},
        startsAt="2026-11-22T03:00:00Z",
    )
    return AlertContext(alert, Classification(), datetime.now(UTC), time.monotonic() + 10)


def provider_for(url: str, **kw) -> PostgresProvider:
    target = PostgresTarget(name="orders-db", matchers=['service=~"orders.*"'], dsn=url)
    return PostgresProvider(PostgresSettings(targets=[target], **kw))


async def wait_until(
    connection: asyncpg.Connection, sql: str, expected: int, timeout: float = 10
) -> None:
    deadline = time.monotonic() + timeout
    while await connection.fetchval(sql) < expected:
        assert time.monotonic() < deadline, f"{sql} never reached {expected}"
        await asyncio.sleep(0.05)


@pytest.fixture
async def saturated() -> AsyncIterator[tuple[str, dict]]:
    """15 'orders-api' and 3 'billing-worker' sessions, one idle in transaction,
    a long pg_sleep, and a lock chain: 'billing-worker' holds a row two others want."""
    async with fresh_database() as url:
        plain = url.replace("postgresql+asyncpg://", "postgresql://")
        setup = await asyncpg.connect(plain)
        await setup.execute(
            "CREATE TABLE orders (id int PRIMARY KEY, total int); INSERT INTO orders VALUES (1, 10)"
        )
        opened: list[asyncpg.Connection] = []

        async def session(app: str) -> asyncpg.Connection:
            connection = await asyncpg.connect(plain, server_settings={"application_name": app})
            opened.append(connection)
            return connection

        for _ in range(15):
            await session("orders-api")
        idle_tx = await session("orders-api")
        await idle_tx.execute("BEGIN; SELECT * FROM orders")
        holder = await session("billing-worker")
        await holder.execute("BEGIN; UPDATE orders SET total = 11 WHERE id = 1")
        waiters = [await session("billing-worker"), await session("orders-api")]
        blocked = [
            asyncio.create_task(w.execute("UPDATE orders SET total = 12 WHERE id = 1"))
            for w in waiters
        ]
        sleeper = await session("report-job")
        long_query = asyncio.create_task(sleeper.execute("SELECT pg_sleep(30)"))
        await wait_until(
            setup, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'", 2
        )
        await wait_until(
            setup,
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'",
            1,
        )
        await asyncio.sleep(1.2)  # the sleep has now run for more than a second
        try:
            yield plain, {"holder": holder.get_server_pid(), "sleeper": sleeper.get_server_pid()}
        finally:
            for task in (*blocked, long_query):
                task.cancel()
            for connection in opened:
                connection.terminate()
            await setup.close()


async def test_connections_name_the_application_and_idle_transactions(saturated) -> None:
    url, _ = saturated
    outcome = await provider_for(url).run(
        Check("c", "postgres", "connections", ""), context({"service": "orders-api"})
    )
    facts = outcome.facts
    assert facts["used"] >= 22
    assert facts["top_application"] == "orders-api"
    assert facts["by_application"][0]["count"] == 17  # 15 + idle-in-tx + one waiter
    assert facts["top_application_share"] == pytest.approx(17 / facts["used"], abs=0.01)
    assert facts["idle_in_transaction"] == 2  # the idle session and the lock holder
    assert facts["used_ratio"] == pytest.approx(
        facts["used"] / (facts["max_connections"] - facts["reserved"]), abs=0.001
    )
    assert "runbook-router-diagnostics" not in {a["application"] for a in facts["by_application"]}
    assert "'orders-api' holds 17" in outcome.findings[0].title


async def test_long_queries_and_lock_chains(saturated) -> None:
    url, pids = saturated
    provider = provider_for(url)
    long = await provider.run(
        Check("l", "postgres", "long_queries", "", {"min_seconds": 1}),
        context({"service": "orders"}),
    )
    sleeping = [q for q in long.facts["queries"] if q["application"] == "report-job"]
    assert sleeping and sleeping[0]["pid"] == pids["sleeper"] and sleeping[0]["seconds"] >= 1
    assert "pg_sleep" in sleeping[0]["query"]
    locks = await provider.run(Check("k", "postgres", "locks", ""), context({"service": "orders"}))
    assert locks.facts["blocked"] == 2
    assert locks.facts["root_blockers"] == [pids["holder"]]
    chain = locks.facts["chains"][0]
    assert chain["blocking_application"] == "billing-worker"
    assert chain["blocking_state"] == "idle in transaction"
    assert f"held by pid {pids['holder']} (billing-worker" in locks.findings[0].title


async def test_sessions_are_read_only_with_a_statement_timeout() -> None:
    async with fresh_database() as url:
        plain = url.replace("postgresql+asyncpg://", "postgresql://")
        provider = provider_for(plain, statement_timeout_ms=1500)
        connection = await provider._connect(provider.settings.targets[0], context())
        try:
            assert await connection.fetchval("SHOW statement_timeout") == "1500ms"
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                await connection.execute("CREATE TABLE nope (id int)")
        finally:
            await connection.close()


async def test_target_selection_and_unreachable_database() -> None:
    dsn = f"postgresql://router:pa55word@127.0.0.1:{free_port()}/x"
    provider = provider_for(dsn)
    with pytest.raises(ProviderError, match="no target matches"):
        await provider.run(
            Check("c", "postgres", "connections", ""), context({"service": "billing"})
        )
    with pytest.raises(ProviderError) as info:
        await provider.run(
            Check("c", "postgres", "connections", ""), context({"service": "orders"})
        )
    assert "orders-db" in str(info.value) and "pa55word" not in str(info.value)
    ping = await provider.run(Check("p", "postgres", "ping", ""), context({"service": "orders"}))
    assert ping.facts["reachable"] is False and "pa55word" not in ping.facts["error"]
    assert ping.findings[0].severity == "critical"
