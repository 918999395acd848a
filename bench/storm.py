"""Storm: 10,000 distinct alerts within a minute, then the same payloads again as duplicates.

Two routers run side by side (``runbook-router serve``, SQLite or, with ``--database
postgresql``, a fresh PostgreSQL database each at ``ROUTER_TEST_POSTGRES_URL``'s server
(dropped afterwards), Slack sink pointed at
a fake Slack Web API over real HTTP, Slack's default flow control: 1 message/s per
channel, bursts of 3, a storm summary past 20 new alerts a minute). One receives the
storm; the other receives nothing and is the baseline for memory and CPU over the
same period. Reported:

- **lost**: alerts sent whose state is not triaged, whose ``publish`` delivery is not
  done, or that have no Slack message reference (own message or storm summary) in
  the store; cross-checked with the fake: own posts + storm-summary count = alerts;
- **duplicates**: alerts with more than one top-level ``chat.postMessage``, and new
  alert states or outbox rows created by the duplicate wave;
- peak RSS (``VmHWM``), CPU ms per alert (``utime + stime``), and the time from the
  first webhook until every alert is delivered (the last outbox row done).

    python bench/storm.py              # 10,000 alerts, 10 per webhook, sent over 50 s
    python bench/storm.py --quick      # 2,000 alerts over 15 s
    python bench/storm.py --alerts 10000 --per-payload 1 --seconds 10   # 1,000 webhooks/s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.loadgen import Connections
from bench.support import (
    PG_URL,
    ProcSample,
    ProfiledRouter,
    TimedSlack,
    alert,
    family,
    machine,
    payload,
    percentile,
    proc_sample,
    router_env,
    write_config,
)
from tests.harness.fake_slack import FakeSlackServer
from tests.procs import RouterProcess

NAMES: list[tuple[str, str]] = [
    ("LatencyP95Breaching", "histogram_quantile(0.95, rate(http_duration_seconds_bucket[5m])) > 1"),
    ("SLOAvailabilityFastBurn", 'sum(rate(http_requests_total{code=~"5.."}[5m])) > 1'),
    ("PodCrashLooping", "rate(kube_pod_container_status_restarts_total[15m]) > 0"),
    ("PostgresTooManyConnections", "pg_stat_activity_count > 90"),
    ("NodeFilesystemAlmostFull", "node_filesystem_avail_bytes < 1e9"),
]


@dataclass
class Wave:
    """One wave's acks: latency from each webhook's planned send time, and how late the
    sender itself started each webhook (its own lag, which the latency includes)."""

    acks: list[float] = field(default_factory=list)
    late: list[float] = field(default_factory=list)
    new: int = 0
    duplicates: int = 0
    errors: int = 0
    seconds: float = 0.0
    ended_wall: float = 0.0  # time.time() when the wave's last answer arrived
    sender_cpu: float = 0.0  # CPU seconds of this process (sender and fake Slack) meanwhile


def webhooks(count: int, per_payload: int, run: str) -> tuple[list[bytes], list[str]]:
    bodies, fingerprints = [], []
    for w in range(count // per_payload):
        name, expr = NAMES[w % len(NAMES)]
        batch = []
        for i in range(per_payload):
            fp = f"{run}-{w:05d}-{i:03d}"
            labels = {"namespace": f"ns{w % 7}", "pod": f"api-{w}-{i}", "instance": fp}
            batch.append(alert(name, fp, labels, expr))
            fingerprints.append(fp)
        bodies.append(payload(batch, name))
    return bodies, fingerprints


async def send(url: str, bodies: list[bytes], seconds: float, connections: int) -> Wave:
    """Open loop: webhook ``i`` is due ``i * seconds / len(bodies)`` after the start and is
    sent then, whatever the earlier ones are doing, over at most ``connections`` keep-alive
    connections (``bench/loadgen.py``; a webhook waits for a free one).

    An ack's latency counts from the webhook's *planned* send time, so a sender that falls
    behind, or a webhook queued for a connection, shows up in the figures (no coordinated
    omission); ``Wave.late`` keeps how late each webhook's task started, the sender's own lag.
    """
    wave = Wave()
    parts = urlsplit(url)
    pool = Connections(url, connections)

    async def one(body: bytes, due: float) -> None:
        wave.late.append(time.monotonic() - due)
        try:
            async with asyncio.timeout(60):
                status, answer = await pool.request(parts.path or "/", body)
        except (OSError, EOFError, TimeoutError, ValueError):
            wave.errors += 1
            return
        wave.acks.append(time.monotonic() - due)
        if status != 202:
            wave.errors += 1
            return
        ack = json.loads(answer)
        wave.new += ack["new"]
        wave.duplicates += ack["duplicates"]

    begin, cpu = time.monotonic(), time.process_time()
    tasks = []
    try:
        for index, body in enumerate(bodies):
            due = begin + index * seconds / len(bodies)
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(body, due)))
        await asyncio.gather(*tasks)
    finally:
        await pool.close()
    wave.seconds = time.monotonic() - begin
    wave.ended_wall = time.time()
    wave.sender_cpu = time.process_time() - cpu
    return wave


class StoreView:
    """Read-only look at the router's SQLite store from this process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)

    def counts(self, table: str) -> dict[str, int]:
        query = f"SELECT state, count(*) FROM {table} GROUP BY state"
        return dict(self.db.execute(query).fetchall())

    def column(self, query: str) -> set[str]:
        return {row[0] for row in self.db.execute(query)}

    def scalar(self, query: str) -> float:
        return self.db.execute(query).fetchone()[0] or 0.0

    def size_mib(self) -> float:
        return sum(f.stat().st_size for f in self.path.parent.iterdir()) / 2**20

    def close(self) -> None:
        self.db.close()


T = TypeVar("T")


class PostgresView:
    """The same look at a router's PostgreSQL database: asyncpg on a loop of its own thread,
    so the calls block like the SQLite view's."""

    def __init__(self, url: str) -> None:
        import asyncpg

        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.db = self._run(asyncpg.connect(url))

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()

    def counts(self, table: str) -> dict[str, int]:
        query = f"SELECT state, count(*) FROM {table} GROUP BY state"
        return {row[0]: row[1] for row in self._run(self.db.fetch(query))}

    def column(self, query: str) -> set[str]:
        return {row[0] for row in self._run(self.db.fetch(query))}

    def scalar(self, query: str) -> float:
        return self._run(self.db.fetchval(query)) or 0.0

    def size_mib(self) -> float:
        return self.scalar("SELECT pg_database_size(current_database())") / 2**20

    def close(self) -> None:
        self._run(self.db.close())
        self.loop.call_soon_threadsafe(self.loop.stop)


async def _on_postgres_server(statement: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(PG_URL)
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


async def fresh_postgres(name: str) -> str:
    """A new, empty database on ``PG_URL``'s server; its URL."""
    await _on_postgres_server(f'CREATE DATABASE "{name}"')
    return PG_URL.rsplit("/", 1)[0] + f"/{name}"


async def drop_postgres(url: str) -> None:
    await _on_postgres_server(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


async def wait_delivered(
    view: StoreView | PostgresView, alerts: int, timeout: float, pid: int, began: float
) -> bool:
    deadline = time.monotonic() + timeout
    printed = 0.0
    while time.monotonic() < deadline:
        jobs, outbox = view.counts("alert_events"), view.counts("outbox")
        busy = outbox.get("pending", 0) + outbox.get("sending", 0)
        finished = jobs.get("done", 0) >= alerts and busy == 0
        if finished or time.monotonic() - printed >= 10:
            rss = proc_sample(pid).rss_mib
            print(
                f"  {time.monotonic() - began:5.0f}s jobs {jobs} outbox {outbox} rss {rss:.0f} MiB"
            )
            printed = time.monotonic()
        if finished:
            return True
        await asyncio.sleep(2.0)
    return False


def start_router(
    root: Path,
    name: str,
    api_url: str,
    threshold: int,
    profile: Path | None = None,
    database_url: str | None = None,
) -> RouterProcess:
    workdir = root / name
    workdir.mkdir()
    slack = {"api_url": api_url, "storm_threshold_per_minute": threshold}
    database = {"database": {"url": database_url}} if database_url else {}
    config = write_config(workdir, slack=slack, **database)
    if profile is not None:
        return ProfiledRouter(workdir, router_env(config), profile.resolve()).start()
    return RouterProcess(workdir, router_env(config)).start()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--per-payload", type=int, default=10, help="alerts per webhook")
    parser.add_argument("--seconds", type=float, default=50.0, help="first wave spread over")
    parser.add_argument("--timeout", type=float, default=900.0, help="max wait for delivery")
    parser.add_argument(
        "--connections", type=int, default=64, help="keep-alive connections at most (64)"
    )
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--quick", action="store_true", help="2,000 alerts over 15 s")
    parser.add_argument(
        "--threshold", type=int, default=20, help="slack.storm_threshold_per_minute (20)"
    )
    parser.add_argument("--keep-log", type=Path, help="copy the storm router's log here")
    parser.add_argument("--profile", type=Path, help="run it under pyinstrument, report here")
    args = parser.parse_args()
    if args.quick:
        args.alerts, args.seconds = min(args.alerts, 2000), min(args.seconds, 15.0)
    print(f"machine: {machine()}")
    print(
        f"{args.alerts} alerts, {args.per_payload} per webhook, first wave over "
        f"{args.seconds:g} s, duplicates over {args.seconds / 2:g} s; {args.database}; "
        f"at most {args.connections} connections"
    )
    slack = TimedSlack()
    slack.add_channel("#alerts")
    server = FakeSlackServer(slack)
    run = f"s{int(time.time()) % 100000:05d}"
    bodies, fingerprints = webhooks(args.alerts, args.per_payload, run)
    databases: list[str | None] = [None, None]
    if args.database == "postgresql":
        databases = [await fresh_postgres(f"rr_storm_{run}_{os.getpid()}_{n}") for n in range(2)]
    with tempfile.TemporaryDirectory(prefix="bench-storm-") as tmp:
        root = Path(tmp)
        storm = start_router(
            root, "storm", server.api_url, args.threshold, args.profile, databases[0]
        )
        idle = start_router(root, "idle", server.api_url, args.threshold, None, databases[1])
        assert storm.process is not None and idle.process is not None
        pids = (storm.process.pid, idle.process.pid)
        processes = [family(pid) for pid in pids]  # the web process, then its workers
        view: StoreView | PostgresView = (
            PostgresView(databases[0])
            if databases[0]
            else StoreView(storm.workdir / "data" / "router.db")
        )
        try:
            before = [[proc_sample(pid) for pid in group] for group in processes]
            began_wall, began = time.time(), time.monotonic()
            url = f"{storm.url}/alertmanager"
            first = await send(url, bodies, args.seconds, args.connections)
            print(f"  first wave sent in {first.seconds:.1f} s", flush=True)
            events_after_first = view.scalar("SELECT count(*) FROM alert_events")
            second = await send(url, bodies, args.seconds / 2, args.connections)
            print(f"  duplicate wave sent in {second.seconds:.1f} s", flush=True)
            done = await wait_delivered(view, args.alerts, args.timeout, pids[0], began)
            elapsed = time.monotonic() - began
            await asyncio.sleep(6)  # let the storm summary's last edit land
            after = [[proc_sample(pid) for pid in group] for group in processes]
            report(args, view, slack, fingerprints, (first, second), before, after)
            print(f"  all delivered: {done}; bench ran {elapsed:.0f} s after the first webhook")
            last_done = view.scalar("SELECT max(done_at) FROM outbox")
            last_triaged = view.scalar("SELECT max(finished_at) FROM alert_events")
            delivered = f"{last_done - began_wall:.1f} s" if done else "not within --timeout"
            print(
                f"  from the first webhook: every alert triaged after "
                f"{last_triaged - began_wall:.1f} s, every alert delivered after {delivered}\n"
                f"  from the first wave's last ack: every alert triaged after "
                f"{last_triaged - first.ended_wall:.1f} s (target 30 s)"
            )
            size = view.size_mib()
            print(
                f"  store on disk: {size:.0f} MiB ({size * 1024 / args.alerts:.1f} KiB per alert)"
            )
            new_events = view.scalar("SELECT count(*) FROM alert_events") - events_after_first
            print(f"  alert states created by the duplicate wave: {new_events:.0f}")
        finally:
            view.close()
            for router in (storm, idle):
                try:  # pyinstrument writes its report on exit: give it time
                    router.terminate(600 if args.profile else 120)
                except subprocess.TimeoutExpired:
                    router.kill()
            server.stop()
            if args.keep_log:
                args.keep_log.write_bytes(storm.log_path.read_bytes())
            for url in databases:
                if url:
                    await drop_postgres(url)


def report(
    args: argparse.Namespace,
    view: StoreView | PostgresView,
    slack: TimedSlack,
    fingerprints: list[str],
    waves: tuple[Wave, Wave],
    before: list[ProcSample],
    after: list[ProcSample],
) -> None:
    sent = set(fingerprints)
    triaged = view.column("SELECT fingerprint FROM alert_events WHERE state = 'done'")
    published = view.column(
        "SELECT fingerprint FROM outbox WHERE action = 'publish' AND state = 'done'"
    )
    referenced = view.column("SELECT thread_key FROM messages WHERE sink = 'slack'")
    unfinished = view.column(
        "SELECT fingerprint FROM alert_events WHERE state IN ('pending', 'running') UNION "
        "SELECT fingerprint FROM outbox WHERE state IN ('pending', 'sending')"
    )
    lost = sent - (triaged & published & referenced) - unfinished
    dead = view.counts("outbox").get("dead", 0)
    posts = {fp: len(times) for fp, times in slack.posted.items() if fp in sent}
    duplicates = sum(1 for n in posts.values() if n > 1)
    summarised = slack.storm_total()
    first, second = waves
    print(
        "\nack latency from each webhook's planned send time; 'late': how late the sender"
        " started it\nwave        webhooks   new  dups  errors  ack p50 ms  p99 ms  max ms"
        "  late p99 ms  max ms  sender CPU s"
    )
    for name, wave in (("first", first), ("duplicate", second)):
        ms = [percentile(wave.acks, q) * 1000 for q in (0.5, 0.99, 1.0)]
        late = [percentile(wave.late, q) * 1000 for q in (0.99, 1.0)]
        print(
            f"{name:11} {len(wave.acks):8d} {wave.new:5d} {wave.duplicates:5d} {wave.errors:7d} "
            f"{ms[0]:10.1f} {ms[1]:7.1f} {ms[2]:7.1f} {late[0]:12.1f} {late[1]:7.1f} "
            f"{wave.sender_cpu:13.1f} of {wave.seconds:.1f}"
        )
    print(
        f"\nlost alerts: {len(lost)} (target 0); outbox rows dead: {dead}; "
        f"alerts still in flight when the run ended: {len(unfinished & sent)}\n"
        f"duplicate notifications: {duplicates} (target 0)\n"
        f"Slack: {len(posts)} alerts posted on their own + {summarised} in storm summaries "
        f"= {len(posts) + summarised} of {len(sent)}; "
        f"chat.postMessage {len(slack.requests('chat.postMessage'))}, "
        f"chat.update {len(slack.requests('chat.update'))}"
    )
    if lost:
        print(f"  e.g. lost: {sorted(lost)[:5]}")
    print(f"\n{'process':14} {'RSS start':>10} {'peak RSS':>9} {'CPU s':>7} {'CPU ms/alert':>13}")
    for router, start, end in zip(("storm", "idle"), before, after, strict=True):
        for index, (b, a) in enumerate(zip(start, end, strict=True)):
            name = f"{router} {'web' if index == 0 else f'worker {index}'}"
            cpu = a.cpu_seconds - b.cpu_seconds
            print(
                f"{name:14} {b.rss_mib:8.0f}Mi {a.hwm_mib:7.0f}Mi {cpu:7.1f} "
                f"{cpu * 1000 / args.alerts:13.2f}"
            )
    storm_cpu, idle_cpu = (cpu_seconds(a, b) for a, b in zip(after, before, strict=True))
    workers_cpu = cpu_seconds(after[0][1:], before[0][1:])
    peak = max(a.hwm_mib for a in after[0])
    print(
        f"storm, every process: {storm_cpu * 1000 / args.alerts:.2f} ms CPU per alert "
        f"(idle router {idle_cpu:.1f} s); worker processes (triage and delivery): "
        f"{workers_cpu * 1000 / args.alerts:.2f} ms per alert (target <= 3 ms)\n"
        f"largest peak RSS of one process {peak:.0f} MiB (target < 150 MiB: "
        f"{'met' if peak < 150 else 'MISSED'})"
    )


def cpu_seconds(after: list[ProcSample], before: list[ProcSample]) -> float:
    return sum(a.cpu_seconds - b.cpu_seconds for a, b in zip(after, before, strict=True))


if __name__ == "__main__":
    asyncio.run(main())
