"""What a metric name and its label matchers mean, from naming conventions.

Prometheus names read as words (``http_request_duration_seconds_bucket``): a domain,
a subject, a unit and a suffix. These predicates look at those words and at what a
label matcher *selects* (see :mod:`router.classify.statuscodes`).
"""

from __future__ import annotations

import re

from router.classify import statuscodes as sc
from router.classify.exprfacts import SelectorUse
from router.classify.matchers import Matcher

SERIES_SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created")
TIME_UNITS = frozenset({"seconds", "milliseconds", "ms", "microseconds", "us", "nanoseconds"})
TIMING_WORDS = frozenset({"latency", "latencies", "duration", "durations", "rtt"})
TIMING_PHRASES = ("response_time", "responsetime", "round_trip", "roundtrip", "request_time")
# JMX-style names glue words together: ``requestmetrics_totaltimems``, ``avgrequestlatency``.
GLUED_TIMING = re.compile(r"[a-z]*(?:latency|duration)[a-z]*|[a-z]*time(?:ms|us|ns|millis)")
REQUEST_WORDS = frozenset(
    {"request", "requests", "response", "responses", "rpc", "grpc", "http", "https"}
    | {"req", "reqs", "rq"}
    | {"handling", "handler", "handled", "query", "queries", "call", "calls", "api"}
    | {"server", "upstream", "ingress", "route", "endpoint", "operation", "operations"}
)
SIZE_WORDS = frozenset({"bytes", "size", "sizes", "ratio", "percent", "entries", "items"})
IO_WORDS = frozenset({"disk", "io", "iops", "fsync", "filesystem", "nfs", "wal", "block"})
# Whose latency: work nobody waits on in a request, so its duration is not a response time.
BACKGROUND_WORDS = frozenset(
    {"gc", "pause", "job", "jobs", "batch", "cron", "cronjob", "backup", "compaction"}
    | {"compactions", "evaluation", "rule", "scrape", "snapshot", "checkpoint", "vacuum"}
)
QUEUE_WORDS = frozenset({"queue", "queues", "queued", "task", "tasks", "schedule", "backlog"})
# A database's own work: statements, queries and transactions it runs.
QUERY_WORDS = frozenset(
    {"query", "queries", "statement", "statements", "tx", "xact", "transaction", "transactions"}
)
ERROR_WORDS = frozenset(
    {"error", "errors", "errored", "failed", "failure", "failures", "fail", "fails"}
    | {"exception", "exceptions", "faults", "unsuccessful"}
)
DB_WORDS = frozenset(
    {"pg", "postgres", "postgresql", "mysql", "mariadb", "redis", "pgbouncer", "pgpool"}
    | {"db", "database", "databases", "mongodb", "mssql", "oracledb", "sql", "hikaricp"}
    | {"jdbc", "r2dbc", "datasource", "sqlalchemy", "odyssey", "proxysql", "memcached"}
    | {"prisma", "pgx", "knex", "sequelize", "typeorm", "gorm", "asyncpg"}
)
CONNECTION_WORDS = frozenset(
    {"connection", "connections", "conn", "conns", "connected", "clients", "client"}
    | {"backends", "numbackends", "maxclients", "pool", "pools"}
    | {"cl", "sv", "threads", "sessions"}
)
TIME_WORDS = TIME_UNITS | {"time", "duration", "age", "idle"}
# A count that reads like a limit (``max_used_connections``) but measures use.
USAGE_WORDS = frozenset({"used", "use", "active", "current", "busy"})
# Spare capacity (``conn_free``, ``state="available"``): it falling means saturation.
HEADROOM_WORDS = frozenset({"free", "available", "avail", "spare", "remaining"})
# Waiting for a connection from a pool (``maxwait``, ``acquire``, ``pending``).
WAIT_WORDS = frozenset({"wait", "waiting", "waiters", "maxwait", "pending", "acquire", "timeout"})
# Waiting on data (a row lock, the redo log), not on a connection from a pool.
CONTENTION_WORDS = frozenset(
    {"lock", "locks", "row", "latch", "mutex", "log", "deadlocks", "blocked"}
)
THREAD_POOL_WORDS = frozenset({"thread", "threads", "worker", "workers", "executor"})
# Glued pool names: ``pgxpool``, ``dbpool`` are connection pools, ``threadpool`` is not.
GLUED_POOL = re.compile(r"(?![a-z]*(?:thread|worker|executor|handler))[a-z]+pool")
START_TIME_WORDS = frozenset({"start", "boot", "started", "uptime"})
LIMIT_WORDS = frozenset({"max", "maximum", "limit", "limits", "maxclients", "capacity", "size"})
# Connections that ended on the client's side: not a sign of a saturated server.
ENDED_WORDS = frozenset({"aborted", "closed", "disconnected", "disconnects"})
POOL_WORDS = frozenset({"pool", "pools"})
LAG_WORDS = frozenset({"replication", "lag", "replica", "slave", "behind", "standby", "wal"})
RESTART_WORDS = frozenset({"restarts", "restart", "restarted", "restarting"})
BURN_MARKERS = ("burnrate", "burn_rate", "error_budget", "errorbudget", "sli_error", "slo")
LATENCY_MARKERS = ("latency", "duration", "slow", "response_time")
# An SLO named after its threshold: ``p99-under-300ms``, ``checkout-p95``.
PERCENTILE_OR_DURATION = re.compile(r"(?<![a-z0-9])(?:p(?:50|75|9[059]|99[09]?)|\d+ms)(?![a-z0-9])")

# Outcome labels that name failure in words (``classification="failure"``, ``result="error"``).
FAILURE_VALUES = ("failure", "failed", "fail", "error", "errors", "exception")
SUCCESS_VALUES = ("success", "succeeded", "ok", "true")
CRASH_REASONS = ("CrashLoopBackOff",)
OOM_REASONS = ("OOMKilled",)
NON_CRASH_REASONS = (
    "ImagePullBackOff",
    "ErrImagePull",
    "ContainerCreating",
    "CreateContainerConfigError",
    "PodInitializing",
    "Completed",
)


def base_name(name: str) -> str:
    """The metric family: ``foo_seconds_bucket`` → ``foo_seconds``."""
    for suffix in SERIES_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def is_timing(use: SelectorUse) -> bool:
    """Measures how long something takes (a duration, latency or response time)."""
    name = use.name.lower()
    if use.words & TIMING_WORDS or any(p in name for p in TIMING_PHRASES):
        return True
    if any(GLUED_TIMING.fullmatch(word) for word in use.words):
        return True
    if not use.words & REQUEST_WORDS:
        return False
    # "time" alone is a timing only as a histogram/summary series (``upstream_rq_time_bucket``);
    # a gauge such as ``max_query_time`` is the age of the oldest query.
    distribution = "time" in use.words and use.name.endswith(("_bucket", "_sum", "_count"))
    return bool(use.words & TIME_UNITS) or distribution


def is_request_summary(use: SelectorUse) -> bool:
    """A summary quantile of requests with no unit: a timer (``vault_core_handle_request``).

    Sizes and counts name their unit (``_bytes``, ``_size``); timers often do not.
    """
    quantile = any(m.name == "quantile" for m in use.matchers)
    sized = use.words & (SIZE_WORDS | {"total", "count"})
    return quantile and is_requests(use) and not sized


def non_request_work(use: SelectorUse) -> str | None:
    """Whose latency, when it is not a request's: database queries, queued or background work.

    A recording rule's level (``job:`` in ``job:slo_latency:ratio``) names labels, not work.
    """
    words = frozenset(w for w in re.split(r"[_:]+", _metric_part(use.name)) if w)
    if words & QUERY_WORDS and words & DB_WORDS:
        return "database queries"
    if words & REQUEST_WORDS:
        return None
    if words & QUEUE_WORDS:
        return "queued work"
    return "background work (GC, jobs, rule evaluation)" if words & BACKGROUND_WORDS else None


def _metric_part(name: str) -> str:
    parts = name.lower().split(":")
    return ":".join(parts[1:]) if len(parts) == 3 else name.lower()


def is_slow_requests(use: SelectorUse) -> bool:
    """Counts slow requests or queries (``mysql_global_status_slow_queries``)."""
    return "slow" in use.words and bool(use.words & REQUEST_WORDS)


def is_io(use: SelectorUse) -> bool:
    return bool(use.words & IO_WORDS) or use.name.startswith("node_disk")


def is_requests(use: SelectorUse) -> bool:
    return bool(use.words & REQUEST_WORDS)


def is_rpc(use: SelectorUse) -> bool:
    return bool(use.words & {"grpc", "rpc"})


def is_error_named(use: SelectorUse) -> bool:
    """Counts errors by its name (``request_errors_total``, ``httpcode_elb_5_xx_count``)."""
    return bool(use.words & ERROR_WORDS) or "errs" in use.words or sc.names_server_errors(use.name)


def is_db(use: SelectorUse) -> bool:
    return bool(use.words & DB_WORDS)


def _connection_words(use: SelectorUse) -> bool:
    words = use.vocabulary
    return bool(words & CONNECTION_WORDS) or use.name.endswith("activity_count")


def is_connection_count(use: SelectorUse) -> bool:
    """A database connection/session/client count (not its limit, a time, or clients blocked)."""
    words = use.vocabulary
    other = words & (TIME_WORDS | ENDED_WORDS | CONTENTION_WORDS)
    if not _connection_words(use) or other or is_limit(use):
        return False
    return bool(words & DB_WORDS) or is_pool(use)


def is_other_connections(use: SelectorUse) -> bool:
    """A connection count of something that is not a database or a pool."""
    words = use.vocabulary
    return _connection_words(use) and not (words & (DB_WORDS | TIME_WORDS) or is_pool(use))


def is_headroom(use: SelectorUse) -> bool:
    """Spare connections: ``conn_free``, ``mongodb_connections{state="available"}``."""
    return bool(use.vocabulary & HEADROOM_WORDS)


def is_pool_wait(use: SelectorUse) -> bool:
    """Time or callers waiting for a database/pool connection (``maxwait``, ``acquire``).

    A database client waiting (``go_sql_wait_count``, ``prisma_client_queries_wait``)
    waits for a connection unless it names a lock or the log.
    """
    words = use.vocabulary
    db_or_pool = words & DB_WORDS or is_pool(use)
    on_connections = _connection_words(use) or not words & CONTENTION_WORDS
    return bool(words & WAIT_WORDS and db_or_pool and on_connections)


def is_limit(use: SelectorUse) -> bool:
    """A configured connection limit such as ``pg_settings_max_connections``."""
    words = use.vocabulary
    limit = bool(words & LIMIT_WORDS and _connection_words(use)) or "maxclients" in words
    return limit and not words & (TIME_WORDS | USAGE_WORDS)


def limits_connections(use: SelectorUse) -> bool:
    """A limit on connections as such (``max_connections``), not on sessions or threads."""
    return is_limit(use) and bool(use.vocabulary & {"connection", "connections", "maxclients"})


def is_start_time(use: SelectorUse) -> bool:
    """A process or host start time (``time() - x < 60`` checks for one restart)."""
    return bool(use.words & START_TIME_WORDS and use.words & TIME_WORDS)


def is_pool(use: SelectorUse) -> bool:
    """A connection pool; a thread pool (``elasticsearch_thread_pool_*``) is not one."""
    glued = any(GLUED_POOL.fullmatch(word) for word in use.words)
    return bool(use.words & POOL_WORDS or glued) and not use.words & THREAD_POOL_WORDS


def is_lag(use: SelectorUse) -> bool:
    return bool(use.words & LAG_WORDS) and not use.words & CONNECTION_WORDS


def is_restart_counter(use: SelectorUse) -> bool:
    """A restart count, ``changes()`` of a process start time, or ``resets()`` of a counter.

    A host's boot time changing is a reboot, not a workload restarting.
    """
    if use.words & RESTART_WORDS or "resets" in use.functions:
        return True
    return is_start_time(use) and "changes" in use.functions and "boot" not in use.words


def is_burn_rate(use: SelectorUse) -> bool:
    """An SLO recording rule: burn rate, error budget or SLI error ratio."""
    name = use.name.lower()
    return ":" in name and any(marker in name for marker in BURN_MARKERS)


def mentions_latency(use: SelectorUse) -> bool:
    """The metric or its matchers (``sloth_slo="latency"``) speak of latency."""
    texts = [use.name.lower(), *(m.value.lower() for m in use.matchers)]
    if any(PERCENTILE_OR_DURATION.search(m.value.lower()) for m in use.matchers):
        return True
    return is_timing(use) or any(marker in t for t in texts for marker in LATENCY_MARKERS)


def is_down_check(use: SelectorUse) -> bool:
    """``up == 0``, ``probe_success < 1``, ``pg_up == 0``: is it reachable at all."""
    healthy = use.words & {"up", "success", "healthy", "available", "alive"}
    low = (use.direction == "==" and use.threshold == 0) or (
        use.falls and use.threshold is not None and use.threshold <= 1
    )
    return bool(healthy and low)


def server_error_matcher(use: SelectorUse) -> Matcher | None:
    """A matcher that selects server failures (HTTP 5xx, gRPC Internal…), not successes."""
    return next((m for m in use.matchers if sc.selects_server_errors(m, is_rpc(use))), None)


def client_error_matcher(use: SelectorUse) -> Matcher | None:
    """A matcher that selects only client errors (HTTP 4xx, gRPC NotFound…)."""
    return next((m for m in use.matchers if sc.selects_client_errors(m, is_rpc(use))), None)


def _word_values(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v for word in words for v in (word, word.title(), word.upper()))


def failure_matcher(use: SelectorUse) -> Matcher | None:
    """A non-status label that selects failed outcomes by name (``classification="failure"``)."""
    return _outcome_matcher(use, _word_values(FAILURE_VALUES), _word_values(SUCCESS_VALUES))


def success_matcher(use: SelectorUse) -> Matcher | None:
    """A matcher that selects successes: ``code!~"5.."``, ``grpc_code="OK"``,
    ``outcome="SUCCESS"``, or on a request metric ``classification="success"``."""
    coded = next((m for m in use.matchers if sc.selects_successes(m, is_rpc(use))), None)
    if coded is not None or not is_requests(use):
        return coded
    return _outcome_matcher(use, _word_values(SUCCESS_VALUES), _word_values(FAILURE_VALUES))


def _outcome_matcher(
    use: SelectorUse, wanted: tuple[str, ...], others: tuple[str, ...]
) -> Matcher | None:
    for matcher in use.matchers:
        coded = sc.family_of(matcher.name) is not None
        if not coded and matcher.op in ("=", "=~") and sc.selects(matcher, wanted, others):
            return matcher
    return None


def reason_matcher(
    use: SelectorUse, wanted: tuple[str, ...], others: tuple[str, ...]
) -> Matcher | None:
    for matcher in use.matchers:
        if matcher.name == "reason" and sc.selects(matcher, wanted, others):
            return matcher
    return None
