"""Prometheus metrics: one :class:`Metrics` per process, in its own registry.

The web layer counts requests and received alerts; the workers count jobs and
deliveries through the same object. ``GET /metrics`` serves :meth:`Metrics.render`.
When ``serve`` runs worker processes, every process writes its values under
``PROMETHEUS_MULTIPROC_DIR`` (set before ``prometheus_client`` is imported) and the
web process's scrape adds them up; the gauges are set by the web process alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from router import __version__
from router.processes import METRICS_DIR_VARIABLE
from router.store import SinkBacklog

PREFIX = "runbook_router_"

# Seconds from receipt to a worker picking the job up: milliseconds when idle,
# minutes under a backlog or while the database was away.
JOB_AGE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
# Seconds to classify, look up and diagnose one alert (diagnostics query Prometheus).
JOB_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """Every metric the router exports, registered in ``self.registry``."""

    def __init__(
        self, registry: CollectorRegistry | None = None, sinks: Sequence[str] = ()
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.sinks = tuple(sinks)  # reported even when their backlog is empty
        r = self.registry
        ProcessCollector(registry=r)  # process_resident_memory_bytes, _cpu_seconds_total, ...
        Gauge(
            PREFIX + "build_info",
            "The running version (always 1).",
            ["version"],
            registry=r,
            multiprocess_mode="max",
        ).labels(version=__version__).set(1)
        self.http_requests = Counter(
            PREFIX + "http_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["endpoint", "method", "status"],
            registry=r,
        )
        self.http_request_duration = Histogram(
            PREFIX + "http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["endpoint"],
            registry=r,
        )
        self.alerts_received = Counter(
            PREFIX + "alerts_received",
            "Alerts accepted from Alertmanager webhooks, by alert status.",
            ["status"],
            registry=r,
        )
        self.alert_duplicates = Counter(
            PREFIX + "alert_duplicates",
            "Accepted alerts whose state had already been received (re-sends).",
            registry=r,
        )
        self.queue_depth = Gauge(
            PREFIX + "queue_depth",
            "Alert jobs waiting to be processed (refreshed on every scrape).",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.job_age = Histogram(
            PREFIX + "job_age_seconds",
            "Seconds from an alert's receipt to the start of its processing.",
            buckets=JOB_AGE_BUCKETS,
            registry=r,
        )
        self.job_duration = Histogram(
            PREFIX + "job_duration_seconds",
            "Seconds spent processing one alert job.",
            buckets=JOB_DURATION_BUCKETS,
            registry=r,
        )
        self.jobs_processed = Counter(
            PREFIX + "jobs_processed",
            "Alert jobs finished, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.deliveries = Counter(
            PREFIX + "deliveries",
            "Delivery attempts to a sink, by sink and outcome.",
            ["sink", "outcome"],
            registry=r,
        )
        self.delivery_failures_permanent = Counter(
            PREFIX + "delivery_failures_permanent",
            "Deliveries given up for good, by sink and reason (router.delivery.REASONS).",
            ["sink", "reason"],
            registry=r,
        )

        self.retriages = Counter(
            PREFIX + "retriages",
            "Re-triage requests (Slack command or button, PagerDuty webhook), by source and "
            "outcome: rerun, reused, already_noted, failed, duplicate.",
            ["source", "outcome"],
            registry=r,
        )

        self.outbox_pending = Gauge(
            PREFIX + "outbox_pending",
            "Deliveries waiting in the outbox, by sink (refreshed on every scrape).",
            ["sink"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.outbox_oldest_age = Gauge(
            PREFIX + "outbox_oldest_pending_age_seconds",
            "Age of the oldest delivery waiting in the outbox, by sink (0 when none waits).",
            ["sink"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.outbox_dead = Gauge(
            PREFIX + "outbox_dead_letters",
            "Deliveries given up for good and kept in the outbox (dead letters), by sink.",
            ["sink"],
            registry=r,
            multiprocess_mode="mostrecent",
        )

    def set_outbox(self, backlog: Iterable[SinkBacklog]) -> None:
        """Every sink's backlog as the store reports it; a sink it does not list has none."""
        by_sink = {b.sink: b for b in backlog}
        for gauge in (self.outbox_pending, self.outbox_oldest_age, self.outbox_dead):
            gauge.clear()
        for sink in sorted({*self.sinks, *by_sink}):
            found = by_sink.get(sink, SinkBacklog(sink))
            self.outbox_pending.labels(sink=sink).set(found.pending)
            self.outbox_oldest_age.labels(sink=sink).set(found.oldest_pending_seconds)
            self.outbox_dead.labels(sink=sink).set(found.dead)

    def render(self) -> tuple[bytes, str]:
        """The registry in the Prometheus text format (without ``_created`` series), and its
        content type."""
        return generate_latest(_WithoutCreated(self._collected())), CONTENT_TYPE_LATEST

    def _collected(self) -> CollectorRegistry:
        """This process's registry; with worker processes, every process's values added up
        (and this process's resource use)."""
        if METRICS_DIR_VARIABLE not in os.environ:
            return self.registry
        shared = CollectorRegistry()
        MultiProcessCollector(shared)
        ProcessCollector(registry=shared)
        return shared


class _WithoutCreated:
    """A view of a registry without the ``_created`` samples (timestamps nobody graphs,
    doubling the series count)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self.registry.collect():
            family.samples = [s for s in family.samples if not s.name.endswith("_created")]
            yield family
