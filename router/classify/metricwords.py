"""What a metric name and its label matchers mean, from naming conventions.

Prometheus names read as words (``http_request_duration_seconds_bucket``): a domain,
a subject, a unit and a suffix. These predicates look at those words and at what a
label matcher *selects* (it is evaluated against sample values, so ``code=~"5.."``,
``status=~"5.*"`` and ``code!~"[1-4].."`` all count as "selects 5xx").
"""

from __future__ import annotations

import re

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
# Work a process does in the background: its duration is not a response time.
BACKGROUND_WORDS = frozenset(
    {"gc", "pause", "job", "jobs", "batch", "cron", "cronjob", "backup", "compaction"}
    | {"compactions", "evaluation", "rule", "scrape", "snapshot", "checkpoint", "vacuum"}
)
ERROR_WORDS = frozenset(
    {"error", "errors", "errored", "failed", "failure", "failures", "fail", "fails"}
    | {"exception", "exceptions", "faults", "unsuccessful", "5xx"}
)
DB_WORDS = frozenset(
    {"pg", "postgres", "postgresql", "mysql", "mariadb", "redis", "pgbouncer", "pgpool"}
    | {"db", "database", "databases", "mongodb", "mssql", "oracledb", "sql", "hikaricp"}
    | {"jdbc", "r2dbc", "datasource", "sqlalchemy", "odyssey", "proxysql", "memcached"}
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
WAIT_WORDS = frozenset({"wait", "waiting", "maxwait", "pending", "acquire", "timeout"})
THREAD_POOL_WORDS = frozenset({"thread", "threads", "worker", "workers", "executor"})
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

SERVER_ERROR_CODES = ("500", "502", "503", "504", "5xx", "5", "SERVER_ERROR", "SERVFAIL")
CLIENT_ERROR_CODES = ("400", "401", "403", "404", "429", "4xx", "4", "CLIENT_ERROR")
SUCCESS_CODES = ("200", "201", "204", "2xx")
GRPC_ERROR_CODES = ("Internal", "Unavailable", "Unknown", "DeadlineExceeded", "DataLoss")
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


def is_background(use: SelectorUse) -> bool:
    """Times background work (GC, a batch job, rule evaluation), not a request."""
    return bool(use.words & BACKGROUND_WORDS) and not use.words & REQUEST_WORDS


def is_slow_requests(use: SelectorUse) -> bool:
    """Counts slow requests or queries (``mysql_global_status_slow_queries``)."""
    return "slow" in use.words and bool(use.words & REQUEST_WORDS)


def is_io(use: SelectorUse) -> bool:
    return bool(use.words & IO_WORDS) or use.name.startswith("node_disk")


def is_requests(use: SelectorUse) -> bool:
    return bool(use.words & REQUEST_WORDS)


def is_error_named(use: SelectorUse) -> bool:
    return bool(use.words & ERROR_WORDS) or "errs" in use.words


def is_db(use: SelectorUse) -> bool:
    return bool(use.words & DB_WORDS)


def _connection_words(use: SelectorUse) -> bool:
    words = use.vocabulary
    return bool(words & CONNECTION_WORDS) or use.name.endswith("activity_count")


def is_connection_count(use: SelectorUse) -> bool:
    """A database connection/session/client count (not its limit, not a time)."""
    words = use.vocabulary
    if not _connection_words(use) or words & (TIME_WORDS | ENDED_WORDS) or is_limit(use):
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
    """Time or callers waiting for a database/pool connection (``maxwait``, ``acquire``)."""
    words = use.vocabulary
    db_or_pool = words & DB_WORDS or is_pool(use)
    return bool(words & WAIT_WORDS and db_or_pool and _connection_words(use))


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
    return bool(use.words & POOL_WORDS) and not use.words & THREAD_POOL_WORDS


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


def selects(matcher: Matcher, wanted: tuple[str, ...], others: tuple[str, ...]) -> bool:
    """The matcher accepts some ``wanted`` values and none of ``others``."""
    return any(matcher.matches_value(v) for v in wanted) and not any(
        matcher.matches_value(v) for v in others
    )


def status_matchers(use: SelectorUse) -> list[Matcher]:
    """Matchers on an HTTP status / response code label (or Micrometer's ``outcome``)."""
    return [m for m in use.matchers if _is_status_label(m.name.lower())]


def _is_status_label(name: str) -> bool:
    return ("code" in name or "status" in name or name == "outcome") and "grpc" not in name


def server_error_matcher(use: SelectorUse) -> Matcher | None:
    """A matcher that selects 5xx responses (or failed gRPC calls), not successes."""
    for matcher in status_matchers(use):
        if selects(matcher, SERVER_ERROR_CODES, SUCCESS_CODES):
            return matcher
    for matcher in use.matchers:
        if "grpc" in matcher.name.lower() and selects(matcher, GRPC_ERROR_CODES, ("OK",)):
            return matcher
    return None


def failure_matcher(use: SelectorUse) -> Matcher | None:
    """A non-status label that selects failed outcomes by name (``classification="failure"``)."""
    for matcher in use.matchers:
        if _is_status_label(matcher.name.lower()) or matcher.op not in ("=", "=~"):
            continue
        values = [v for word in FAILURE_VALUES for v in (word, word.title(), word.upper())]
        successes = [v for word in SUCCESS_VALUES for v in (word, word.title(), word.upper())]
        if selects(matcher, tuple(values), tuple(successes)):
            return matcher
    return None


def client_error_matcher(use: SelectorUse) -> Matcher | None:
    """A matcher that selects only 4xx client errors."""
    for matcher in status_matchers(use):
        if selects(matcher, CLIENT_ERROR_CODES, SERVER_ERROR_CODES + SUCCESS_CODES):
            return matcher
    return None


def reason_matcher(
    use: SelectorUse, wanted: tuple[str, ...], others: tuple[str, ...]
) -> Matcher | None:
    for matcher in use.matchers:
        if matcher.name == "reason" and selects(matcher, wanted, others):
            return matcher
    return None
