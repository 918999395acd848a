"""PostgreSQL: who holds the connections, what waits on what. Read-only, always.

The target is the first ``diagnostics.postgres.targets`` entry whose matchers match
the alert's labels (or the check's ``target`` param). Every session is opened
read-only with a statement timeout, and the router's own session is left out of
every count. Check kinds and their facts:

- ``connections``: ``used``, ``max_connections``, ``reserved``, ``available``,
  ``used_ratio``, ``by_state``, ``by_application``, ``top_application``,
  ``top_application_share``, ``idle_in_transaction``,
  ``idle_in_transaction_oldest_seconds``, ``databases``.
- ``long_queries`` (``min_seconds`` = 30, ``limit`` = 5): ``count``, ``longest_seconds``, ``queries``.
- ``locks``: ``blocked``, ``chains``, ``root_blockers``.
- ``ping``: ``reachable``, ``latency_ms``, ``server_version``, ``error``.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

import asyncpg

from router.classify.matchers import matches_all, parse_matchers
from router.config import PostgresSettings, PostgresTarget
from router.diagnose import pg_queries as q
from router.diagnose.base import AlertContext, Check, CheckOutcome, ProviderError
from router.redact import Redactor
from router.triage import Evidence, Finding

APPLICATION = "runbook-router-diagnostics"
QUERY_CHARS = 300


class PostgresProvider:
    name = "postgres"
    kinds = frozenset({"connections", "long_queries", "locks", "ping"})

    def __init__(self, settings: PostgresSettings, secrets: Iterable[str] = ()) -> None:
        self.settings = settings
        self.redact = Redactor(secrets)
        self.targets = [
            (target, [m for text in target.matchers for m in parse_matchers(text)])
            for target in settings.targets
        ]
        for target in settings.targets:
            self.redact.add(target.dsn)

    async def run(self, check: Check, context: AlertContext) -> CheckOutcome:
        target = self._target(check, context)
        if check.kind == "ping":
            return await self._ping(target, context)
        connection = await self._connect(target, context)
        try:
            return await getattr(self, f"_{check.kind}")(connection, target, check)
        except (asyncpg.PostgresError, OSError) as exc:
            raise ProviderError(self._describe(target, exc)) from None
        finally:
            await connection.close()

    async def close(self) -> None:
        pass  # connections are per check

    def _target(self, check: Check, context: AlertContext) -> PostgresTarget:
        wanted = check.params.get("target")
        for target, matchers in self.targets:
            if (wanted and target.name == wanted) or (
                not wanted and matches_all(matchers, context.labels)
            ):
                return target
        raise ProviderError("PostgreSQL: no target matches this alert")

    async def _connect(self, target: PostgresTarget, context: AlertContext) -> asyncpg.Connection:
        timeout = max(0.05, min(self.settings.timeout_seconds, context.remaining()))
        try:
            return await asyncpg.connect(
                target.dsn.get_secret_value(),
                timeout=timeout,
                server_settings={
                    "application_name": APPLICATION,
                    "default_transaction_read_only": "on",
                    "statement_timeout": str(self.settings.statement_timeout_ms),
                },
            )
        except TimeoutError:
            raise ProviderError(
                f"PostgreSQL {target.name}: timed out after {timeout:.3g} s"
            ) from None
        except (asyncpg.PostgresError, OSError) as exc:
            raise ProviderError(self._describe(target, exc)) from None

    def _describe(self, target: PostgresTarget, exc: BaseException) -> str:
        if isinstance(exc, ConnectionRefusedError | OSError) and not isinstance(
            exc, asyncpg.PostgresError
        ):
            reason = (
                "connection refused"
                if isinstance(exc, ConnectionRefusedError)
                else type(exc).__name__
            )
        else:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return self.redact(f"PostgreSQL {target.name}: {reason}")

    async def _ping(self, target: PostgresTarget, context: AlertContext) -> CheckOutcome:
        started = time.perf_counter()
        try:
            connection = await self._connect(target, context)
        except ProviderError as exc:
            facts = {
                "reachable": False,
                "latency_ms": None,
                "server_version": None,
                "error": str(exc),
            }
            return CheckOutcome(
                [Finding(title=f"{exc}: unreachable", source=self.name, severity="critical")], facts
            )
        try:
            version = await connection.fetchval("SHOW server_version")
        finally:
            await connection.close()
        latency = round((time.perf_counter() - started) * 1000, 1)
        facts = {"reachable": True, "latency_ms": latency, "server_version": version, "error": None}
        title = f"PostgreSQL {target.name} answers ({latency:.0f} ms, version {version})"
        return CheckOutcome([Finding(title=title, source=self.name, severity="ok")], facts)

    async def _connections(
        self, connection: asyncpg.Connection, target: PostgresTarget, check: Check
    ) -> CheckOutcome:
        settings = dict(await connection.fetch(q.SETTINGS))
        rows = await connection.fetch(q.SESSIONS)
        max_connections = int(settings["max_connections"])
        reserved = int(settings.get("superuser_reserved_connections", 0)) + int(
            settings.get("reserved_connections", 0)
        )
        usable = max(1, max_connections - reserved)
        by_app: dict[str, Counter[str]] = {}
        for row in rows:
            by_app.setdefault(row["application"] or "(none)", Counter())[
                row["state"] or "unknown"
            ] += 1
        applications = sorted(
            (
                {"application": app, "count": sum(states.values()), "states": dict(states)}
                for app, states in by_app.items()
            ),
            key=lambda a: -a["count"],
        )
        used = len(rows)
        idle_tx = [r for r in rows if (r["state"] or "").startswith("idle in transaction")]
        top = applications[0] if applications else None
        facts = {
            "used": used,
            "max_connections": max_connections,
            "reserved": reserved,
            "available": usable - used,
            "used_ratio": round(used / usable, 4),
            "by_state": dict(Counter(r["state"] or "unknown" for r in rows)),
            "by_application": applications,
            "top_application": top["application"] if top else None,
            "top_application_share": round(top["count"] / used, 4) if top and used else 0.0,
            "idle_in_transaction": len(idle_tx),
            "idle_in_transaction_oldest_seconds": max(
                (r["state_seconds"] or 0.0 for r in idle_tx), default=0.0
            ),
            "databases": dict(Counter(r["datname"] or "" for r in rows)),
        }
        return CheckOutcome([_connections_finding(target, facts)], facts)

    async def _long_queries(
        self, connection: asyncpg.Connection, target: PostgresTarget, check: Check
    ) -> CheckOutcome:
        min_seconds = float(check.params.get("min_seconds", 30))
        limit = int(check.params.get("limit", 5))
        rows = await connection.fetch(q.LONG_QUERIES, min_seconds, limit)
        queries = [
            {
                "pid": r["pid"],
                "application": r["application"],
                "state": r["state"],
                "seconds": round(r["seconds"], 1),
                "wait_event": r["wait_event"],
                "query": self._query_text(r["query"]),
            }
            for r in rows
        ]
        facts = {
            "count": len(queries),
            "longest_seconds": queries[0]["seconds"] if queries else 0.0,
            "queries": queries,
        }
        if not queries:
            return CheckOutcome(
                [
                    Finding(
                        title=f"No query running longer than {min_seconds:g} s",
                        source=self.name,
                        severity="ok",
                    )
                ],
                facts,
            )
        table = Evidence(
            kind="table",
            label="longest queries",
            columns=["pid", "application", "state", "seconds", "query"],
            rows=[
                [
                    str(x["pid"]),
                    x["application"] or "",
                    x["state"] or "",
                    f"{x['seconds']:g}",
                    x["query"][:80],
                ]
                for x in queries
            ],
        )
        title = f"{len(queries)} query(ies) running longer than {min_seconds:g} s, longest {queries[0]['seconds']:g} s ({queries[0]['application'] or 'no application name'})"
        return CheckOutcome(
            [Finding(title=title, source=self.name, severity="warning", evidence=[table])], facts
        )

    async def _locks(
        self, connection: asyncpg.Connection, target: PostgresTarget, check: Check
    ) -> CheckOutcome:
        rows = await connection.fetch(q.LOCK_CHAINS)
        chains = [
            {
                "blocked_pid": r["blocked_pid"],
                "blocked_application": r["blocked_application"],
                "blocking_pid": r["blocking_pid"],
                "blocking_application": r["blocking_application"],
                "blocking_state": r["blocking_state"],
                "waiting_seconds": round(r["waiting_seconds"] or 0.0, 1),
                "blocking_query": self._query_text(r["blocking_query"]),
            }
            for r in rows
        ]
        blocked = {c["blocked_pid"] for c in chains}
        roots = sorted({c["blocking_pid"] for c in chains} - blocked)
        facts = {"blocked": len(blocked), "chains": chains, "root_blockers": roots}
        if not chains:
            return CheckOutcome(
                [Finding(title="No session is waiting on a lock", source=self.name, severity="ok")],
                facts,
            )
        root = next(c for c in chains if c["blocking_pid"] in roots) if roots else chains[0]
        title = (
            f"{len(blocked)} session(s) waiting on locks held by pid {root['blocking_pid']} "
            f"({root['blocking_application'] or 'no application name'}, {root['blocking_state']})"
        )
        table = Evidence(
            kind="table",
            label="lock chains",
            columns=["blocked pid", "blocked app", "blocking pid", "blocking app", "waiting s"],
            rows=[
                [
                    str(c["blocked_pid"]),
                    c["blocked_application"] or "",
                    str(c["blocking_pid"]),
                    c["blocking_application"] or "",
                    f"{c['waiting_seconds']:g}",
                ]
                for c in chains[:10]
            ],
        )
        return CheckOutcome(
            [Finding(title=title, source=self.name, severity="critical", evidence=[table])], facts
        )

    def _query_text(self, text: str | None) -> str:
        text = re.sub(r"(?i)(password\s*=?\s*)'[^']*'", r"\1'***'", text or "")
        text = " ".join(text.split())
        return self.redact(text[:QUERY_CHARS] + ("…" if len(text) > QUERY_CHARS else ""))


def _connections_finding(target: PostgresTarget, facts: dict[str, Any]) -> Finding:
    usable = facts["max_connections"] - facts["reserved"]
    ratio = facts["used_ratio"]
    title = (
        f"PostgreSQL {target.name}: {facts['used']} of {usable} usable connections ({ratio:.0%})"
    )
    if facts["top_application"]:
        title += f" — '{facts['top_application']}' holds {facts['by_application'][0]['count']} ({facts['top_application_share']:.0%})"
    severity = "critical" if ratio >= 0.9 else "warning" if ratio >= 0.75 else "info"
    states = sorted({s for a in facts["by_application"] for s in a["states"]})
    rows = [
        [a["application"], str(a["count"]), *(str(a["states"].get(s, 0)) for s in states)]
        for a in facts["by_application"][:10]
    ]
    table = Evidence(
        kind="table",
        label="connections by application",
        columns=["application", "total", *states],
        rows=rows,
    )
    return Finding(title=title, source="postgres", severity=severity, evidence=[table])
