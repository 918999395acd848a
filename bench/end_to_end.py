"""End to end: webhook received → Slack message posted, with live and hung diagnostics backends.

The router runs as in production (``runbook-router serve``, SQLite, 4 workers,
Slack sink) against a fake Slack Web API over real HTTP. Each alert is timed from
the moment its webhook is sent until the fake Slack receives the alert's top-level
``chat.postMessage``. Three scenarios, each on a fresh router:

- **baseline**: no diagnostics backend configured (diagnostics find nothing to query);
- **live**: a real Prometheus scraping a test exporter, the real PostgreSQL
  (``ROUTER_TEST_POSTGRES_URL``, default ``postgresql://postgres@127.0.0.1:5432/test``)
  as a ``diagnostics.postgres`` target, and an HTTP probe of Prometheus's ``/-/healthy``;
- **hung**: Prometheus and the HTTP probe point at a TCP listener that accepts and
  never answers (their timeouts raised to 30 s so the per-alert deadline is what
  binds); PostgreSQL stays live.

Alerts rotate between latency, error-rate and database-saturation ones (their
playbooks query Prometheus, PostgreSQL and the probe). Slack's per-channel rate
limit is raised for this benchmark so it measures the pipeline, not the limiter
(``bench/storm.py`` measures the limiter).

    python bench/end_to_end.py            # 40 alerts per scenario at 2/s
    python bench/end_to_end.py --quick    # 12 alerts per scenario
    python bench/end_to_end.py --scenarios baseline --router-root /tmp/old  # an older tree's router

    python bench/end_to_end.py --scenarios baseline --database-url postgresql://…/db

The baseline scenario alone needs no Prometheus.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import (
    PG_URL,
    HangingServer,
    TimedSlack,
    alert,
    machine,
    payload,
    percentile,
    router_env,
    write_config,
)
from tests.harness.fake_slack import FakeSlackServer
from tests.harness.prometheus import PrometheusServer, TestExporter, available
from tests.procs import RouterProcess

KINDS: list[tuple[str, str, dict[str, str]]] = [
    (
        "LatencyP95Breaching",
        "histogram_quantile(0.95, sum by (le) (rate("
        'http_request_duration_seconds_bucket{service="checkout"}[5m]))) > 0.5',
        {"service": "checkout", "namespace": "shop"},
    ),
    (
        "SLOAvailabilityFastBurn",
        'sum(rate(http_requests_total{service="checkout",code=~"5.."}[5m]))'
        ' / sum(rate(http_requests_total{service="checkout"}[5m])) > 0.05',
        {"service": "checkout", "namespace": "shop"},
    ),
    (
        "PostgresTooManyConnections",
        "sum(pg_stat_activity_count) / sum(pg_settings_max_connections) > 0.8",
        {"service": "orders-db", "namespace": "db"},
    ),
]


@dataclass
class Outcome:
    name: str
    latencies: list[float] = field(default_factory=list)
    acks: list[float] = field(default_factory=list)
    missing: int = 0
    target: float = 2.0

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)


class Backends:
    """Prometheus + exporter (with moving counters), the hung listener, the fake Slack;
    without ``prometheus`` (the baseline alone) the fake Slack only."""

    def __init__(self, prometheus: bool = True) -> None:
        self.slack = TimedSlack()
        self.slack.add_channel("#alerts")
        self.slack_server = FakeSlackServer(self.slack)
        self._stop = threading.Event()
        self.with_prometheus = prometheus
        if not prometheus:
            return
        self.exporter = TestExporter()
        self._feed()
        self.prometheus = PrometheusServer([self.exporter.target])
        self.prometheus.wait_for('up{job="exporter"} == 1')
        self.hang = HangingServer()
        threading.Thread(target=self._tick, daemon=True).start()

    def _feed(self) -> None:
        e = self.exporter
        e.set("pg_stat_activity_count", {"datname": "orders"}, 85)
        e.set("pg_settings_max_connections", {}, 100)
        for pod in ("checkout-1", "checkout-2"):
            labels = {"service": "checkout", "namespace": "shop", "pod": pod}
            e.histogram("http_request_duration_seconds", labels, {0.1: 50, 0.5: 30, 1.0: 20}, 40.0)
            for code in ("200", "500"):
                e.set("http_requests_total", {**labels, "code": code}, 0)

    def _tick(self) -> None:
        """Counters that move, so rate() and histogram_quantile() have something to say."""
        while not self._stop.wait(0.5):
            for pod in ("checkout-1", "checkout-2"):
                labels = {"service": "checkout", "namespace": "shop", "pod": pod}
                self.exporter.add("http_requests_total", {**labels, "code": "200"}, 40)
                self.exporter.add("http_requests_total", {**labels, "code": "500"}, 6)

    def close(self) -> None:
        self._stop.set()
        self.slack_server.stop()
        if not self.with_prometheus:
            return
        self.hang.close()
        self.prometheus.close()
        self.exporter.close()


def scenario_config(name: str, b: Backends, args: argparse.Namespace) -> dict[str, Any]:
    deadline = args.deadline
    slack = {
        "api_url": b.slack_server.api_url,
        "rate_per_second": 1000,
        "burst": 1000,
        "storm_threshold_per_minute": 1_000_000,
    }
    if name == "baseline":
        return {"slack": slack, "worker": {"count": args.workers}}
    live = name == "live"
    url = b.prometheus.url if live else b.hang.url
    timeout = 3.0 if live else 30.0
    return {
        "slack": slack,
        "worker": {"count": args.workers},
        "prometheus": {"url": url, "timeout_seconds": timeout},
        "diagnostics": {
            "deadline_seconds": 10.0 if live else deadline,
            "postgres": {"targets": [{"name": "test-db", "dsn": PG_URL}]},
            "http": {
                "timeout_seconds": timeout,
                "probes": [{"url": f"{url}/-/healthy"}],
            },
        },
    }


async def run_scenario(
    name: str, b: Backends, args: argparse.Namespace, run_id: str
) -> tuple[Outcome, str]:
    outcome = Outcome(name, target=2.0 if name != "hung" else args.deadline + 1.0)
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        workdir = Path(tmp)
        config = write_config(workdir, **scenario_config(name, b, args))
        env = router_env(config)
        if args.router_root:  # another tree's router (an earlier commit, to compare)
            env["PYTHONPATH"] = str(args.router_root.resolve())
        if args.database_url:
            env["ROUTER_DATABASE_URL"] = args.database_url
        router = RouterProcess(workdir, env).start()
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                url = f"{router.url}/alertmanager"
                warm = [f"{run_id}-{name}-warm{i}" for i in range(3)]
                await send_all(client, url, warm, 4.0, Outcome("warm-up"))
                await wait_posted(b.slack, warm, args.deadline + 20)
                fingerprints = [f"{run_id}-{name}-{i:04d}" for i in range(args.alerts)]
                sent = await send_all(client, url, fingerprints, args.rate, outcome)
                await wait_posted(b.slack, fingerprints, args.deadline + 30)
        finally:
            router.terminate()
        log = router.log_path.read_text(errors="replace")
    for fingerprint, started in sent.items():
        posts = b.slack.posted.get(fingerprint)
        if posts:
            outcome.latencies.append(posts[0] - started)
        else:
            outcome.missing += 1
    return outcome, log


async def send_all(
    client: httpx.AsyncClient, url: str, fingerprints: list[str], rate: float, outcome: Outcome
) -> dict[str, float]:
    """Send one webhook per alert at ``rate`` per second (open loop); returns send times."""
    sent: dict[str, float] = {}

    async def one(index: int, fingerprint: str) -> None:
        name, expr, labels = KINDS[index % len(KINDS)]
        body = payload([alert(name, fingerprint, {**labels, "instance": fingerprint}, expr)], name)
        started = time.monotonic()
        sent[fingerprint] = started
        response = await client.post(
            url, content=body, headers={"content-type": "application/json"}
        )
        outcome.acks.append(time.monotonic() - started)
        if response.status_code != 202:
            raise RuntimeError(f"webhook answered {response.status_code}: {response.text[:200]}")

    tasks = []
    begin = time.monotonic()
    for index, fingerprint in enumerate(fingerprints):
        delay = begin + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, fingerprint)))
    await asyncio.gather(*tasks)
    return sent


async def wait_posted(slack: TimedSlack, fingerprints: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(fp in slack.posted for fp in fingerprints):
            return
        await asyncio.sleep(0.05)


def report(outcomes: list[Outcome]) -> None:
    base = outcomes[0]
    print(
        f"{'scenario':10} {'n':>4} {'lost':>4} {'ack p50':>8} {'p50 s':>6} {'p95 s':>6} "
        f"{'max s':>6} {'p50 x base':>9} {'p95 x base':>9} {'target':>8}"
    )
    for o in outcomes:
        met = "met" if o.p(0.95) < o.target and not o.missing else "MISSED"
        print(
            f"{o.name:10} {len(o.latencies):4d} {o.missing:4d} "
            f"{percentile(o.acks, 0.5) * 1000:6.1f}ms {o.p(0.5):6.2f} {o.p(0.95):6.2f} "
            f"{max(o.latencies, default=float('nan')):6.2f} {o.p(0.5) / base.p(0.5):9.1f} "
            f"{o.p(0.95) / base.p(0.95):9.1f} <{o.target:g}s {met}"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=40, help="alerts per scenario")
    parser.add_argument("--rate", type=float, default=2.0, help="webhooks per second")
    parser.add_argument(
        "--deadline", type=float, default=3.0, help="diagnostics deadline, hung scenario"
    )
    parser.add_argument("--workers", type=int, default=4, help="worker.count (default 4)")
    parser.add_argument("--quick", action="store_true", help="12 alerts per scenario")
    parser.add_argument("--scenarios", nargs="+", default=["baseline", "live", "hung"])
    parser.add_argument("--keep-log", type=Path, help="write the routers' logs here")
    parser.add_argument(
        "--router-root", type=Path, help="run the router from this source tree instead"
    )
    parser.add_argument("--database-url", help="the router's store (default: SQLite)")
    args = parser.parse_args()
    if args.quick:
        args.alerts = min(args.alerts, 12)
    prometheus = args.scenarios != ["baseline"]
    if prometheus and not available():
        raise SystemExit("needs the prometheus binary (Debian package 'prometheus')")
    print(f"machine: {machine()}")
    print(
        f"{args.alerts} alerts per scenario at {args.rate:g} webhooks/s (1 alert each); "
        f"hung scenario deadline {args.deadline:g} s; worker.count {args.workers}"
    )
    backends = Backends(prometheus)
    outcomes: list[Outcome] = []
    run_id = f"{int(time.time()) % 100000:05d}"
    try:
        for name in args.scenarios:
            outcome, log = await run_scenario(name, backends, args, run_id)
            outcomes.append(outcome)
            if args.keep_log:
                args.keep_log.mkdir(parents=True, exist_ok=True)
                (args.keep_log / f"router-{name}.log").write_text(log)
            print(f"  {name}: done", flush=True)
    finally:
        backends.close()
    report(outcomes)
    calls: dict[str, int] = {}
    for call in backends.slack.calls:
        calls[call.method] = calls.get(call.method, 0) + 1
    print("fake Slack calls:", ", ".join(f"{k} {v}" for k, v in sorted(calls.items())))


if __name__ == "__main__":
    asyncio.run(main())
