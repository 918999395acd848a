"""The expression features: one table of named, weighted signals per category.

Each :class:`Feature` looks at the :class:`ExprFacts` of an alert expression and
names the metric (and matcher) it found, or ``None``. Positive weights are evidence
for a category; negative weights are evidence against it (4xx codes, disk I/O,
"too few" connections, an image that cannot be pulled). ``category=None`` applies
the weight to every built-in category (an up/down or ``absent()`` check).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from router.classify import metricwords as mw
from router.classify import statuscodes as sc
from router.classify.exprfacts import ExprFacts, SelectorUse

Finder = Callable[[ExprFacts], str | None]

RATE_FUNCTIONS = frozenset({"rate", "irate", "increase", "delta", "idelta", "changes", "resets"})


@dataclass(frozen=True)
class Feature:
    name: str
    category: str | None
    weight: float
    describe: str  # "{subject}" is replaced by what the finder returned
    find: Finder

    def reason(self, subject: str) -> str:
        target = self.category or "all categories"
        return f"expr: {self.describe.format(subject=subject)} ({self.weight:+g} {target})"


def any_use(predicate: Callable[[SelectorUse], bool]) -> Finder:
    """The first metric use satisfying ``predicate``, by name."""

    def find(facts: ExprFacts) -> str | None:
        return next((use.name for use in facts.uses if predicate(use)), None)

    return find


def any_matcher(select: Callable[[SelectorUse], object | None]) -> Finder:
    """The first metric use whose matcher ``select`` returns one, as ``metric{matcher}``."""

    def find(facts: ExprFacts) -> str | None:
        for use in facts.uses:
            matcher = select(use)
            if matcher is not None:
                return f"{use.name}{{{matcher}}}"
        return None

    return find


def _average_latency(facts: ExprFacts) -> str | None:
    counts = [
        u for u in facts.uses if u.role == "denominator" and u.name.endswith(("_count", "_total"))
    ]
    for use in facts.uses:
        if use.role == "numerator" and use.name.endswith("_sum") and mw.is_timing(use) and counts:
            return f"{use.name} / {counts[0].name}"
    return None


def _error_ratio(facts: ExprFacts) -> str | None:
    totals = [u for u in facts.uses if u.role == "denominator"]
    for use in facts.uses:
        requests = mw.is_requests(use) or any(mw.is_requests(t) for t in totals)
        if use.role == "numerator" and mw.is_error_named(use) and totals and requests:
            return f"{use.name} / {totals[0].name}"
    return None


def _success_ratio_falling(facts: ExprFacts) -> str | None:
    """A success ratio that fires when it falls (``ok / total < 0.99``, ``1 - ok / total > x``)."""
    for use in facts.uses:
        matcher = mw.success_matcher(use)
        if use.role == "numerator" and use.falls and matcher is not None:
            return f"{use.name}{{{matcher}}}"
    return None


def _in_use_against_max(facts: ExprFacts) -> str | None:
    """Connections in use divided by a database's or pool's maximum (``max_connections``)."""
    limits = [
        u.name
        for u in facts.uses
        if u.role == "denominator"
        and mw.is_limit(u)
        and (mw.is_db(u) or mw.is_pool(u) or mw.limits_connections(u))
    ]
    for use in facts.uses:
        counted = mw.is_connection_count(use) or mw.is_other_connections(use)
        if use.role == "numerator" and counted and limits:
            return f"{use.name} / {limits[0]}"
    return None


def _connections_refused(use: SelectorUse) -> bool:
    """Errors of a database or pool at its connection limit (``errmsg="...max_client_conn"``)."""
    return mw.is_error_named(use) and (mw.is_db(use) or mw.is_pool(use)) and mw.is_limit(use)


def _connection_limit(facts: ExprFacts) -> str | None:
    """A connection limit read together with a connection count.

    With a database count, any limit; with another count, only a limit on connections
    (``max_connections``), not a load balancer's ``limit_sessions`` or ``max_threads``.
    """
    db_count = any(mw.is_connection_count(u) for u in facts.uses)
    other_count = any(mw.is_other_connections(u) for u in facts.uses)
    for use in facts.uses:
        if mw.is_limit(use) and (db_count or (other_count and mw.limits_connections(use))):
            return use.name
    return None


def _connections_falling(facts: ExprFacts) -> str | None:
    """A connection count that fires when low (too few), not spare capacity running out.

    A ratio's denominator (``used / (used + free)``, ``active / pool_size``) is a total
    or a limit, and spare capacity falling is saturation: neither is "too few".
    """
    rising = {use.name for use in facts.uses if use.rises}
    for use in facts.uses:
        low = mw.is_connection_count(use) and use.falls and not mw.is_headroom(use)
        if low and use.role != "denominator" and use.name not in rising:
            return use.name
    return None


def _headroom_falling(use: SelectorUse) -> bool:
    return mw.is_connection_count(use) and mw.is_headroom(use) and use.falls


def _is_histogram_quantile(use: SelectorUse) -> bool:
    return use.name.endswith("_bucket") and "histogram_quantile" in use.functions


def _is_summary_timer(use: SelectorUse) -> bool:
    quantile = any(m.name == "quantile" for m in use.matchers)
    return (quantile and mw.is_timing(use)) or mw.is_request_summary(use)


def _not_request_latency(facts: ExprFacts) -> str | None:
    """Whose latency: a time (or slow counter) of queries, queued or background work."""
    for use in facts.uses:
        work = mw.non_request_work(use)
        timed = mw.is_timing(use) or use.words & mw.TIME_UNITS or mw.is_slow_requests(use)
        if work and timed:
            return f"{use.name} times {work}"
    return None


def _is_timing_gauge(use: SelectorUse) -> bool:
    return mw.is_timing(use) and use.rises and not use.name.endswith(mw.SERIES_SUFFIXES)


def _restarts_increasing(use: SelectorUse) -> bool:
    return mw.is_restart_counter(use) and bool(RATE_FUNCTIONS & set(use.functions) or use.rises)


FEATURES: tuple[Feature, ...] = (
    # latency
    Feature("latency_histogram", "latency", 3, "histogram_quantile over {subject}",
            any_use(lambda u: _is_histogram_quantile(u) and mw.is_timing(u))),
    Feature("latency_average", "latency", 3, "average latency {subject}", _average_latency),
    Feature("latency_summary", "latency", 3, "summary quantile of {subject}",
            any_use(_is_summary_timer)),
    Feature("latency_gauge", "latency", 2, "duration {subject} above a threshold",
            any_use(_is_timing_gauge)),
    Feature("latency_burn_rate", "latency", 3, "latency SLO burn rate {subject}",
            any_use(lambda u: mw.is_burn_rate(u) and mw.mentions_latency(u))),
    Feature("slow_requests", "latency", 2, "slow request counter {subject}",
            any_use(lambda u: mw.is_slow_requests(u) and not u.falls)),
    Feature("io_metric", "latency", -3, "disk / I/O metric {subject}", any_use(mw.is_io)),
    Feature("not_request_latency", "latency", -4, "{subject}, not requests a user waits on",
            _not_request_latency),
    # error_rate
    Feature("server_errors", "error_rate", 3, "{subject} selects server errors",
            any_matcher(mw.server_error_matcher)),
    Feature("server_error_ratio", "error_rate", 1, "ratio with {subject} as numerator",
            any_matcher(lambda u: mw.server_error_matcher(u) if u.role == "numerator" else None)),
    Feature("failed_requests", "error_rate", 3, "{subject} selects failed requests",
            any_matcher(lambda u: mw.failure_matcher(u) if mw.is_requests(u) else None)),
    Feature("server_errors_by_name", "error_rate", 3, "{subject} counts 5xx responses by name",
            any_use(lambda u: sc.names_server_errors(u.name))),
    Feature("success_ratio_falling", "error_rate", 3,
            "success ratio {subject} fires when it falls (errors rising)", _success_ratio_falling),
    Feature("client_errors", "error_rate", -4, "{subject} selects only client errors",
            any_matcher(mw.client_error_matcher)),
    Feature("error_ratio", "error_rate", 2.5, "request error ratio {subject}", _error_ratio),
    Feature("request_errors", "error_rate", 1.5, "request error counter {subject}",
            any_use(lambda u: mw.is_error_named(u) and mw.is_requests(u))),
    Feature("error_burn_rate", "error_rate", 3, "error-budget burn rate {subject}",
            any_use(lambda u: mw.is_burn_rate(u) and not mw.mentions_latency(u))),
    Feature("error_ratio_rule", "error_rate", 2, "error ratio recording rule {subject}",
            any_use(lambda u: ":" in u.name and mw.is_error_named(u) and not mw.is_burn_rate(u))),
    # db_saturation
    Feature("db_connections", "db_saturation", 2, "database connection count {subject}",
            any_use(mw.is_connection_count)),
    Feature("connection_limit", "db_saturation", 2, "connection limit {subject}",
            _connection_limit),
    Feature("in_use_against_max", "db_saturation", 2, "connections in use against a maximum {subject}",
            _in_use_against_max),
    Feature("connections_refused", "db_saturation", 3, "{subject} counts connections refused at a limit",
            any_use(_connections_refused)),
    Feature("other_connections", "db_saturation", -1, "{subject} counts non-database connections",
            any_use(mw.is_other_connections)),
    Feature("connections_rising", "db_saturation", 1, "{subject} rising above a threshold",
            any_use(lambda u: mw.is_connection_count(u) and u.rises)),
    Feature("pool_wait", "db_saturation", 2, "{subject} waits for a pooled connection",
            any_use(lambda u: mw.is_pool_wait(u) and not u.falls)),
    Feature("headroom_falling", "db_saturation", 1, "spare connections {subject} running out",
            any_use(_headroom_falling)),
    Feature("connections_falling", "db_saturation", -4, "{subject} below a threshold (too few)",
            _connections_falling),
    Feature("replication_lag", "db_saturation", -3, "replication metric {subject}",
            any_use(mw.is_lag)),
    # crashloop
    Feature("restart_counter", "crashloop", 2, "restart counter {subject}",
            any_use(mw.is_restart_counter)),
    Feature("restarts_increasing", "crashloop", 1, "{subject} increasing",
            any_use(_restarts_increasing)),
    Feature("crashloop_reason", "crashloop", 3, "{subject} in CrashLoopBackOff",
            any_matcher(lambda u: mw.reason_matcher(u, mw.CRASH_REASONS, mw.NON_CRASH_REASONS))),
    Feature("oom_killed", "crashloop", 1.5, "{subject} OOM-killed",
            any_matcher(lambda u: mw.reason_matcher(u, mw.OOM_REASONS, ("Completed",)))),
    Feature("oom_counter", "crashloop", 0.5, "OOM kill counter {subject}",
            any_use(lambda u: "oom" in u.words and bool(u.words & {"kill", "killed", "kills", "events"}))),
    Feature("waiting_not_crashing", "crashloop", -3, "{subject} waiting, not crashing",
            any_matcher(lambda u: mw.reason_matcher(u, mw.NON_CRASH_REASONS, mw.CRASH_REASONS))),
    Feature("start_time", "crashloop", -2, "start time {subject} (one restart, not a loop)",
            any_use(lambda u: mw.is_start_time(u) and not mw.is_restart_counter(u))),
    # every category
    Feature("down_check", None, -3, "{subject} is an up/down check", any_use(mw.is_down_check)),
    Feature("absent_check", None, -3, "absent({subject}) checks a series is missing",
            any_use(lambda u: bool({"absent", "absent_over_time"} & set(u.functions)))),
)  # fmt: skip
