"""PostgreSQL: who holds the connections, what runs long, what waits on what. Read-only, always.

The target is the check's ``target`` param, else the first
``diagnostics.postgres.targets`` entry whose matchers match the alert's labels.
Each check opens one short-lived session, read-only with a statement timeout,
and every count leaves out the router's own sessions. Every check publishes
``target``; the kinds and their other facts:

- ``connections`` (``database``: the alert's database, default the DSN's): for the
  whole server ``used``, ``max_connections``, ``reserved``, ``usable``, ``available``,
  ``used_ratio`` (of usable), ``by_state``, ``by_application``, ``top_application``,
  ``top_application_share`` (of used), ``idle_in_transaction``,
  ``idle_in_transaction_oldest_seconds``, ``databases``; and ``database``, the same
  counted for that database alone: ``name``, ``used``, ``limit`` (its ``CONNECTION
  LIMIT``, else the server's usable), ``used_ratio``, ``top_application``,
  ``top_application_count``, ``top_application_share``.
- ``long_queries`` (``min_seconds`` = 30, ``limit`` = 5): ``count``,
  ``longest_seconds``, ``queries``.
- ``locks``: ``blocked``, ``chains``, ``root_blockers``, and ``root_blocker``, the one
  most sessions wait on: ``pid``, ``application``, ``state``, ``transaction_seconds``,
  ``query`` (redacted), ``waiting`` (sessions waiting on it, directly or in a chain).
- ``ping``: ``reachable``, ``latency_ms``, ``connect_ms``, ``server_version``,
  ``error`` (an unreachable server is a fact here, not an error).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from router.classify.matchers import Matcher, matches_all, parse_matchers
from router.config import PostgresSettings, PostgresTarget
from router.diagnose.base import (
    AlertContext,
    Check,
    CheckOutcome,
    ProviderError,
    ProviderSettingsError,
    tls_failure,
)
from router.diagnose.catalog import POSTGRES
from router.diagnose.pg_queries import (
    DATABASE_LIMIT_SQL,
    LOCKS_SQL,
    LONG_QUERIES_SQL,
    SESSIONS_SQL,
    SETTINGS_SQL,
)
from router.redact import Redactor, secret_values
from router.triage import Evidence, Finding

NAME = POSTGRES.title
APPLICATION = "runbook-router-diagnostics"
QUERY_CHARS = 300
MAX_ROWS = 10

_SECRET_AFTER_WORD = re.compile(
    r"(?i)(\b(?:password|passwd|pwd|secret|token|api_?key|access_?key|private_?key|credentials?)"
    r"\b[^';]{0,20}?)'(?:[^']|'')*'"
)
_TOKEN_LITERAL = re.compile(
    r"'(?![0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}')"  # a UUID is an id, not a key
    r"(?=[^'\s]*\d)(?=[^'\s]*[A-Za-z])[A-Za-z0-9_+/=.:-]{20,}'"
)


class PostgresProvider:
    """Connections, long queries, lock chains and reachability of the configured databases."""

    name = POSTGRES.name
    kinds = POSTGRES.kinds

    def __init__(self, settings: PostgresSettings, secrets: Iterable[str] = ()) -> None:
        for index, target in enumerate(settings.targets):
            check_dsn(target, index)
        self.settings = settings
        self.redact = Redactor([*secrets, *secret_values(settings)])
        self.targets: list[tuple[PostgresTarget, list[Matcher]]] = [
            (target, [m for text in target.matchers for m in parse_matchers(text)])
            for target in settings.targets
        ]

    async def run(self, check: Check, context: AlertContext) -> CheckOutcome:
        target = self.target_for(check, context)
        runner = getattr(self, f"_{check.kind}", None) if check.kind in self.kinds else None
        if runner is None:
            raise ProviderError(f"{NAME}: unknown check kind {check.kind!r}")
        if check.kind == "ping":
            return await self._ping(target, check, context)
        budget = self._budget(check, context)
        try:
            async with asyncio.timeout(budget), self.session(target, budget) as connection:
                outcome: CheckOutcome = await runner(connection, target, check)
        except (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise ProviderError(f"{NAME} {target.name}: {self._reason(exc, budget)}") from None
        outcome.facts = {"target": target.name, **outcome.facts}
        return outcome

    async def close(self) -> None:
        """Nothing to release: every check opens and closes its own session."""

    def target_for(self, check: Check, context: AlertContext) -> PostgresTarget:
        """The ``target`` param's target, else the first whose matchers match the alert."""
        wanted = check.params.get("target")
        if wanted:
            for target, _ in self.targets:
                if target.name == wanted:
                    return target
            raise ProviderError(f"{NAME}: no target named {wanted!r} is configured")
        for target, matchers in self.targets:
            if matches_all(matchers, context.labels):
                return target
        raise ProviderError("no PostgreSQL target matches this alert")

    @contextlib.asynccontextmanager
    async def session(
        self, target: PostgresTarget, timeout: float
    ) -> AsyncIterator[asyncpg.Connection]:
        """A read-only session on ``target`` with the statement timeout; closed on exit."""
        timeout_ms = str(self.settings.statement_timeout_ms)
        connection = await asyncpg.connect(
            _plain_dsn(target.dsn.get_secret_value()),
            timeout=timeout,
            server_settings={
                "application_name": APPLICATION,
                "default_transaction_read_only": "on",
                "statement_timeout": timeout_ms,
                "lock_timeout": timeout_ms,
            },
        )
        try:
            yield connection
        finally:
            try:
                await connection.close(timeout=1)
            except Exception:
                connection.terminate()

    def _budget(self, check: Check, context: AlertContext) -> float:
        limits = (self.settings.timeout_seconds, check.timeout or float("inf"), context.remaining())
        return max(0.05, min(limits))

    def _reason(self, exc: BaseException, budget: float) -> str:
        """A short, redacted reason for a failure: never a traceback, never a secret."""
        if isinstance(exc, TimeoutError):
            return f"timed out after {budget:.3g} s"
        if isinstance(exc, asyncpg.QueryCanceledError):
            return f"query cancelled after the {self.settings.statement_timeout_ms} ms statement timeout"
        if isinstance(exc, ConnectionRefusedError) or f"[Errno {errno.ECONNREFUSED}]" in str(exc):
            return "connection refused"
        if isinstance(exc, socket.gaierror):
            return "cannot resolve the host name"
        if (tls := tls_failure(exc)) is not None:
            return tls
        if isinstance(exc, asyncpg.ClientConfigurationError):
            return "invalid DSN or connection settings"
        if isinstance(exc, asyncpg.ConnectionDoesNotExistError | ConnectionResetError):
            return "the server closed the connection"
        text = str(exc).splitlines()[0].strip() if str(exc).strip() else ""
        if isinstance(exc, OSError) and exc.errno:
            text = os.strerror(exc.errno).lower()  # asyncio's strerror names the address instead
        return self.redact(text or type(exc).__name__)

    async def _ping(
        self, target: PostgresTarget, check: Check, context: AlertContext
    ) -> CheckOutcome:
        budget = self._budget(check, context)
        facts: dict[str, Any] = {"target": target.name, "reachable": False, "latency_ms": None}
        facts |= {"connect_ms": None, "server_version": None, "error": None}
        started = time.perf_counter()
        try:
            async with asyncio.timeout(budget), self.session(target, budget) as connection:
                facts["connect_ms"] = _ms_since(started)
                started = time.perf_counter()
                await connection.fetchval("SELECT 1")
                facts["latency_ms"] = _ms_since(started)
                facts["server_version"] = await connection.fetchval("SHOW server_version")
        except (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            facts |= {"latency_ms": None, "error": self._reason(exc, budget)}
            title = f"{NAME} {target.name} unreachable: {facts['error']}"
            return CheckOutcome(
                [Finding(title=title, source=self.name, severity="critical")], facts
            )
        facts["reachable"] = True
        title = (
            f"{NAME} {target.name} answers SELECT 1 in {facts['latency_ms']:.3g} ms "
            f"(connect {facts['connect_ms']:.3g} ms, version {facts['server_version']})"
        )
        severity = "warning" if facts["latency_ms"] >= 500 else "ok"
        return CheckOutcome([Finding(title=title, source=self.name, severity=severity)], facts)

    async def _connections(
        self, connection: asyncpg.Connection, target: PostgresTarget, check: Check
    ) -> CheckOutcome:
        settings = dict(await connection.fetch(SETTINGS_SQL))
        wanted = str(check.params.get("database") or "")
        database = await connection.fetchrow(DATABASE_LIMIT_SQL, wanted)
        rows = await connection.fetch(SESSIONS_SQL, APPLICATION)
        limit = database["connection_limit"]
        facts = connection_facts(
            settings, [dict(r) for r in rows], wanted or database["name"], limit
        )
        findings = [_connections_finding(target, facts)]
        if facts["idle_in_transaction"]:
            findings.append(_idle_in_transaction_finding(facts))
        return CheckOutcome(findings, facts)

    async def _long_queries(
        self, connection: asyncpg.Connection, target: PostgresTarget, check: Check
    ) -> CheckOutcome:
        min_seconds = float(check.params.get("min_seconds", 30))
        limit = max(1, int(check.params.get("limit", 5)))
        rows = await connection.fetch(LONG_QUERIES_SQL, APPLICATION, min_seconds, limit)
        queries = [
            {
                "pid": r["pid"],
                "application": r["application"] or "",
                "state": r["state"],
                "seconds": round(r["seconds"], 1),
                "wait_event": r["wait_event"],
                "query": self.query_text(r["query"]),
            }
            for r in rows
        ]
        count = rows[0]["total"] if rows else 0
        longest = queries[0]["seconds"] if queries else 0.0
        facts = {"count": count, "longest_seconds": longest, "queries": queries}
        if not queries:
            title = f"No query has been running for more than {_duration(min_seconds)}"
            return CheckOutcome([Finding(title=title, source=self.name, severity="ok")], facts)
        top = queries[0]
        title = (
            f"{_plural(count, 'query', 'queries')} running for more than {_duration(min_seconds)}"
            f" — longest {_duration(longest)} ({_app(top['application'])}, pid {top['pid']})"
        )
        table = Evidence(
            kind="table",
            label="longest-running queries",
            columns=["pid", "application", "running", "waiting on", "query"],
            rows=[
                [
                    str(x["pid"]),
                    _app(x["application"]),
                    _duration(x["seconds"]),
                    x["wait_event"] or "",
                    _shorten(x["query"], 80),
                ]
                for x in queries
            ],
        )
        finding = Finding(title=title, source=self.name, severity="warning", evidence=[table])
        return CheckOutcome([finding], facts)

    async def _locks(
        self, connection: asyncpg.Connection, target: PostgresTarget, check: Check
    ) -> CheckOutcome:
        rows = await connection.fetch(LOCKS_SQL)
        chains = [
            {
                "blocked_pid": r["blocked_pid"],
                "blocked_application": r["blocked_application"] or "",
                "blocking_pid": r["blocking_pid"],
                "blocking_application": r["blocking_application"] or "",
                "blocking_state": r["blocking_state"],
                "blocking_state_seconds": round(r["blocking_state_seconds"] or 0.0, 1),
                "blocking_transaction_seconds": round(r["blocking_transaction_seconds"] or 0.0, 1),
                "waiting_seconds": round(r["waiting_seconds"] or 0.0, 1),
                "blocking_query": self.query_text(r["blocking_query"]),
            }
            for r in rows
        ]
        blocked = {c["blocked_pid"] for c in chains}
        roots = sorted({c["blocking_pid"] for c in chains} - blocked)
        facts = {
            "blocked": len(blocked),
            "chains": chains,
            "root_blockers": roots,
            "root_blocker": _root_blocker(chains),
        }
        if not chains:
            title = "No session is waiting on a lock"
            return CheckOutcome([Finding(title=title, source=self.name, severity="ok")], facts)
        return CheckOutcome([_locks_finding(facts)], facts)

    def query_text(self, text: str | None) -> str:
        """Query text fit to show: secret-looking literals masked, whitespace folded, truncated."""
        text = _SECRET_AFTER_WORD.sub(r"\1'***'", text or "")
        text = self.redact(_TOKEN_LITERAL.sub("'***'", " ".join(text.split())))
        return _shorten(text, QUERY_CHARS)


def connection_facts(
    settings: dict[str, int],
    rows: list[dict[str, Any]],
    database: str = "",
    database_limit: int | None = None,
) -> dict[str, Any]:
    """The ``connections`` facts from ``pg_settings`` values and the other client sessions.

    ``database`` is counted on its own too, against its ``CONNECTION LIMIT``
    (``database_limit``; None or -1: none, so the server's usable connections).
    """
    max_connections = settings["max_connections"]
    reserved = settings.get("superuser_reserved_connections", 0)
    reserved += settings.get("reserved_connections", 0)
    usable, used = max_connections - reserved, len(rows)
    by_app: dict[str, Counter[str]] = {}
    for row in rows:
        by_app.setdefault(row["application"] or "", Counter())[row["state"] or "unknown"] += 1
    applications = sorted(
        (
            {"application": app, "count": sum(states.values()), "states": dict(states)}
            for app, states in by_app.items()
        ),
        key=lambda a: (-a["count"], a["application"]),
    )
    idle_tx = [r for r in rows if (r["state"] or "").startswith("idle in transaction")]
    top = applications[0] if applications else None
    own_limit = database_limit is not None and database_limit >= 0
    in_database = [r for r in rows if r["datname"] == database]
    return {
        "used": used,
        "max_connections": max_connections,
        "reserved": reserved,
        "usable": usable,
        "available": usable - used,
        "used_ratio": round(used / usable, 4) if usable > 0 else 1.0,
        "by_state": dict(Counter(r["state"] or "unknown" for r in rows)),
        "by_application": applications,
        "top_application": top["application"] if top else None,
        "top_application_share": round(top["count"] / used, 4) if top else 0.0,
        "idle_in_transaction": len(idle_tx),
        "idle_in_transaction_oldest_seconds": round(
            max((r["state_seconds"] or 0.0 for r in idle_tx), default=0.0), 1
        ),
        "idle_in_transaction_applications": sorted({r["application"] or "" for r in idle_tx}),
        "databases": dict(Counter(r["datname"] or "" for r in rows)),
        "database": _database_facts(database, in_database, database_limit if own_limit else usable),
    }


def _database_facts(name: str, rows: list[dict[str, Any]], limit: int | None) -> dict[str, Any]:
    """The connections of one database, against the limit that applies to it."""
    used = len(rows)
    apps = Counter(r["application"] or "" for r in rows)
    top, count = min(apps.items(), key=lambda a: (-a[1], a[0])) if apps else (None, 0)
    return {
        "name": name,
        "used": used,
        "limit": limit,
        "used_ratio": round(used / limit, 4) if limit else 1.0,
        "top_application": top,
        "top_application_count": count,
        "top_application_share": round(count / used, 4) if used else 0.0,
    }


def _root_blocker(chains: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The session at the root of the most waits, with how many sessions wait on it."""
    blockers: dict[int, set[int]] = {}
    for c in chains:
        blockers.setdefault(c["blocked_pid"], set()).add(c["blocking_pid"])

    def roots_of(pid: int, seen: frozenset[int] = frozenset()) -> set[int]:
        above = blockers.get(pid, set()) - seen
        if not above:
            return {pid}
        return set().union(*(roots_of(b, seen | {pid}) for b in above))

    waiting: Counter[int] = Counter()
    for blocked in blockers:
        waiting.update(roots_of(blocked) - {blocked})
    if not waiting:
        return None
    pid = min(waiting, key=lambda p: (-waiting[p], p))
    held = next(c for c in chains if c["blocking_pid"] == pid)
    return {
        "pid": pid,
        "application": held["blocking_application"],
        "state": held["blocking_state"],
        "transaction_seconds": held["blocking_transaction_seconds"],
        "query": held["blocking_query"],
        "waiting": waiting[pid],
    }


def _connections_finding(target: PostgresTarget, facts: dict[str, Any]) -> Finding:
    usable, ratio = facts["usable"], facts["used_ratio"]
    title = f"Connections: {facts['used']} of {usable} usable ({ratio:.0%})"
    if facts["by_application"]:
        top = facts["by_application"][0]
        title += f" — '{_app(top['application'])}' holds {top['count']}"
    database = facts["database"]
    if database["name"]:
        title += (
            f"; database {database['name']}: {database['used']} of {database['limit']}"
            f" {'usable' if database['limit'] == usable else 'allowed'}"
        )
    worst = max(ratio, database["used_ratio"] if database["used"] else 0.0)
    severity = "critical" if worst >= 0.9 else "warning" if worst >= 0.75 else "ok"
    states = sorted(facts["by_state"], key=lambda s: -facts["by_state"][s])
    rows = [
        [_app(a["application"]), str(a["count"]), *(str(a["states"].get(s, 0)) for s in states)]
        for a in facts["by_application"][:MAX_ROWS]
    ]
    table = Evidence(
        kind="table",
        label=f"{target.name}: sessions by application and state",
        columns=["application", "total", *states],
        rows=rows,
    )
    return Finding(title=title, source="postgres", severity=severity, evidence=[table])


def _idle_in_transaction_finding(facts: dict[str, Any]) -> Finding:
    count, oldest = facts["idle_in_transaction"], facts["idle_in_transaction_oldest_seconds"]
    apps = ", ".join(_app(a) for a in facts["idle_in_transaction_applications"])
    title = (
        f"{_plural(count, 'session')} idle in transaction, oldest for {_duration(oldest)} ({apps})"
    )
    severity = "warning" if oldest >= 60 else "info"
    return Finding(title=title, source="postgres", severity=severity)


def _locks_finding(facts: dict[str, Any]) -> Finding:
    chains, roots, blocker = facts["chains"], facts["root_blockers"], facts["root_blocker"]
    root_pid = blocker["pid"]
    root = next(c for c in chains if c["blocking_pid"] == root_pid)
    state = root["blocking_state"] or "state unknown"
    title = (
        f"{_plural(facts['blocked'], 'session')} waiting on locks held by pid {root_pid} "
        f"({_app(root['blocking_application'])}, {state} for {_duration(root['blocking_state_seconds'])}"
        f", transaction open {_duration(blocker['transaction_seconds'])})"
    )
    if len(roots) > 1:
        title += f" and {_plural(len(roots) - 1, 'other session')}"
    table = Evidence(
        kind="table",
        label="lock waits",
        columns=["blocked pid", "blocked app", "waiting", "blocking pid", "blocking app", "state"],
        rows=[
            [
                str(c["blocked_pid"]),
                _app(c["blocked_application"]),
                _duration(c["waiting_seconds"]),
                str(c["blocking_pid"]),
                _app(c["blocking_application"]),
                c["blocking_state"] or "",
            ]
            for c in chains[:MAX_ROWS]
        ],
    )
    query = Evidence(kind="log", label=f"pid {root_pid}: last query", text=root["blocking_query"])
    severity = "critical" if max(c["waiting_seconds"] for c in chains) >= 5 else "warning"
    return Finding(title=title, source="postgres", severity=severity, evidence=[table, query])


def check_dsn(target: PostgresTarget, index: int) -> None:
    """Raise :class:`ProviderSettingsError` for a DSN asyncpg cannot use (never showing it)."""
    at = ("diagnostics", "postgres", "targets", index, "dsn")
    parts = urlsplit(_plain_dsn(target.dsn.get_secret_value()))
    if parts.scheme not in ("postgresql", "postgres"):
        raise ProviderSettingsError(
            at, f"target {target.name}: the DSN must be a postgresql://user@host:port/db URL"
        )
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ProviderSettingsError(
            at, f"target {target.name}: the DSN's port is not a number"
        ) from None


def _plain_dsn(dsn: str) -> str:
    """``postgresql+asyncpg://…`` (SQLAlchemy's spelling) as asyncpg expects it."""
    return re.sub(r"^postgres(?:ql)?\+\w+://", "postgresql://", dsn)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _app(name: str | None) -> str:
    return name or "(no application name)"


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _duration(seconds: float) -> str:
    """``45 s``, ``5 min``, ``2 h 5 min``: how long, as a person says it."""
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.2g} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 90 else f"{minutes // 60} h {minutes % 60} min"
