"""Cost growth: ingest and triage time per alert against payload size and runbook library size.

In-process timing of the real components, no live backend:

- **alerts per payload** (1, 10, 100, 1,000): parsing a webhook body into a
  ``WebhookPayload`` (``json.loads`` + pydantic, as ``POST /alertmanager`` does),
  ``store.ingest`` into a fresh SQLite store (sequential webhooks, so no group commit
  helps), and the worker's job for each alert: ``Pipeline.triage`` of the payload's
  alerts concurrently, then the Slack sink's ``render``;
- **runbook library size** (10, 100, 1,000 generated ``##`` runbooks, each with four
  sub-sections, written to a temp dir): ``load_components`` (parse + index + rules +
  playbooks, once per start-up) and per alert: classify, find the runbook section,
  triage, render;
- **store size** (1,000 to 100,000 stored alert states, a third older than the
  retention): reading an alert's history (by fingerprint, and by alert name for a new
  fingerprint) and one retention batch (``store.prune``).

Each row shows the cost per alert and the ratio to the smallest case (the baseline):
a ratio near 1 means the per-alert cost does not grow.

    python bench/cost_growth.py
    python bench/cost_growth.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import TOKEN, alert, machine, payload
from router.alerts import WebhookPayload
from router.config import Settings, SlackSettings
from router.diagnose import build_diagnostics
from router.integrations.slack.sink import SlackSink
from router.pipeline import Pipeline
from router.service import Components, load_components
from router.store import Store, open_store
from router.store.history import History
from router.store.retention import prune
from router.store.schema import alert_events, alerts, payloads
from router.triage import TriageResult

TOPICS = [
    ("Latency Breach", "histogram_quantile(0.99, rate(http_request_duration_seconds_bucket[5m]))"),
    ("Error Rate", 'sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(x[5m]))'),
    ("Connection Saturation", "pg_stat_activity_count / pg_settings_max_connections"),
    ("Crash Loop", "rate(kube_pod_container_status_restarts_total[15m])"),
    ("Disk Pressure", "node_filesystem_avail_bytes / node_filesystem_size_bytes"),
]
ROUNDS = 3  # best of; 1 with --quick
PAYLOAD_STAGES = ["parse", "ingest", "triage", "render", "total"]
LIB_STAGES = ["classify", "find", "triage", "render", "total"]
EXPRESSIONS = [
    "histogram_quantile(0.95, sum by (le) (rate(api_request_duration_seconds_bucket[5m]))) > 0.5",
    'sum(rate(api_requests_total{code=~"5.."}[5m])) / sum(rate(api_requests_total[5m])) > 0.05',
    "max(kube_pod_container_status_waiting_reason{reason='CrashLoopBackOff'}) > 0",
    "sum(pg_stat_activity_count) / sum(pg_settings_max_connections) > 0.8",
    "up == 0",
]


def write_library(folder: Path, runbooks: int, per_file: int = 10) -> None:
    """``runbooks`` numbered ``##`` runbooks, ``per_file`` to a markdown file."""
    folder.mkdir(parents=True)
    for start in range(0, runbooks, per_file):
        lines = [f"# Service runbooks {start // per_file}", ""]
        for n in range(start, min(start + per_file, runbooks)):
            topic, expr = TOPICS[n % len(TOPICS)]
            other = (n + 1) % per_file + start
            lines += [
                f"## {n + 1}. Service{n} {topic}",
                "",
                "### Alert",
                "",
                f"Alertname: Service{n}{topic.replace(' ', '')}",
                "",
                f"Fires when `{expr}` stays above its threshold for 5 minutes.",
                "",
                "### Symptoms",
                "",
                f"- service{n} answers slowly or fails; dashboards show the {topic.lower()}.",
                "",
                "### Investigation",
                "",
                "```bash",
                f"kubectl -n service{n} get pods -o wide",
                f"kubectl -n service{n} logs deploy/service{n} --since=15m | tail -50",
                "```",
                "",
                "### Causes and fixes",
                "",
                f"Roll back a recent deployment of service{n}, or scale it out. "
                f"See [the neighbour](#{other + 1}-service{other}-"
                f"{TOPICS[other % len(TOPICS)][0].lower().replace(' ', '-')}).",
                "",
            ]
        (folder / f"services-{start // per_file:04d}.md").write_text("\n".join(lines))


def alerts_for(count: int, tag: str) -> list[dict[str, Any]]:
    """A mix: names a runbook declares, built-in rule names, and unknown names (PromQL decides)."""
    out = []
    for i in range(count):
        kind = i % 3
        if kind == 0:
            n = i % 10
            name = f"Service{n}{TOPICS[n % len(TOPICS)][0].replace(' ', '')}"
            expr = TOPICS[n % len(TOPICS)][1] + " > 1"
        elif kind == 1:
            name, expr = "LatencyP95Breaching", EXPRESSIONS[0]
        else:
            name, expr = f"Unknown{i % 50}", EXPRESSIONS[i % len(EXPRESSIONS)]
        labels = {"namespace": "shop", "service": f"svc{i % 20}", "instance": f"{tag}-{i}"}
        out.append(alert(name, f"{tag}-{i:06d}", labels, expr))
    return out


def results_of(body: bytes) -> list[TriageResult]:
    parsed = WebhookPayload.model_validate(json.loads(body))
    return [
        TriageResult(
            alert=a,
            external_url=parsed.externalURL,
            receiver=parsed.receiver,
            group_key=parsed.groupKey,
        )
        for a in parsed.alerts
    ]


def build(settings: Settings, components: Components) -> tuple[Pipeline, SlackSink]:
    slack = SlackSink(
        SlackSettings(bot_token=TOKEN, api_url="http://127.0.0.1:9/api/"),
        store=None,  # type: ignore[arg-type]  # render never touches the store
        templates=settings.templates,
    )
    diagnoser = build_diagnostics(settings, components.playbooks, components.library, {})
    pipeline = Pipeline(components.classifier, components.finder, diagnoser, [slack])
    return pipeline, slack


async def timed(repeat: int, step: Callable[[], Any]) -> float:
    """Seconds per call of ``step`` (awaited if it returns an awaitable), best of ``ROUNDS``."""
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(repeat):
            out = step()
            if asyncio.iscoroutine(out) or isinstance(out, asyncio.Future):
                await out
        best = min(best, (time.perf_counter() - started) / repeat)
    return best


async def by_payload_size(sizes: list[int], total: int, tmp: Path) -> None:
    settings = Settings(data_dir=tmp)
    pipeline, slack = build(settings, load_components(settings))
    print(
        f"\nalerts per payload (built-in library; >= {total} alerts each): "
        "microseconds per alert (x the 1-alert payload)"
    )
    print(f"{'alerts':>7}" + "".join(f"{k:>16}" for k in PAYLOAD_STAGES))
    first: dict[str, float] | None = None
    for size in sizes:
        webhooks = max(3, total // size)
        bodies = [payload(alerts_for(size, f"p{size}-{w}"), f"Group{w}") for w in range(webhooks)]
        started = time.perf_counter()
        parsed = [WebhookPayload.model_validate(json.loads(b)) for b in bodies]
        parse = (time.perf_counter() - started) / (webhooks * size)
        store = await open_store(f"sqlite+aiosqlite:///{tmp / f'ingest-{size}.db'}")
        try:
            started = time.perf_counter()
            for p in parsed:
                await store.ingest(p)
            ingest = (time.perf_counter() - started) / (webhooks * size)
        finally:
            await store.close()
        batches = [results_of(b) for b in bodies[: max(1, 100 // size)]]
        count = sum(map(len, batches))

        async def triage_all(batches: list[list[TriageResult]] = batches) -> list[TriageResult]:
            out: list[TriageResult] = []
            for batch in batches:  # the alerts of one payload concurrently, like a worker
                out += await asyncio.gather(*map(pipeline.triage, batch))
            return out

        triage = await timed(1, triage_all) / count
        triaged = await triage_all()
        render = await timed(1, lambda t=triaged: [slack.render(r) for r in t]) / count
        row = {"parse": parse, "ingest": ingest, "triage": triage, "render": render}
        row["total"] = sum(row.values())
        first = first or row
        print(f"{size:7d}" + cells(row, first, PAYLOAD_STAGES))


def cells(row: dict[str, float], first: dict[str, float], keys: list[str]) -> str:
    return "".join(f"{row[k] * 1e6:9.0f} ({row[k] / first[k]:4.2f})" for k in keys)


async def by_library_size(sizes: list[int], alerts: int, tmp: Path) -> None:
    print(
        f"\nrunbook library size ({alerts} alerts): load once per start-up, then "
        "microseconds per alert (x the 10-runbook library)"
    )
    print(
        f"{'runbooks':>8} {'sections':>8} {'load ms':>12}" + "".join(f"{k:>16}" for k in LIB_STAGES)
    )
    first: dict[str, float] | None = None
    batch = results_of(payload(alerts_for(alerts, "lib"), "Library"))
    for size in sizes:
        folder = tmp / f"library-{size}"
        write_library(folder, size)
        row = await measure_library(Settings(data_dir=tmp, runbooks=[folder]), batch)
        row["total"] = row["triage"] + row["render"]
        first = first or row
        print(
            f"{size:8d} {row['sections']:8.0f} {row['load'] * 1000:6.0f} ({row['load'] / first['load']:4.1f})"
            + cells(row, first, LIB_STAGES)
            + f"  {row['found']:.0f}/{len(batch)} with a runbook"
        )


async def measure_library(settings: Settings, batch: list[TriageResult]) -> dict[str, float]:
    """Load time, and seconds per alert of each stage, for one library."""
    started = time.perf_counter()
    components = load_components(settings)
    load = time.perf_counter() - started
    pipeline, slack = build(settings, components)
    alerts = [r.alert for r in batch]
    classes = [components.classifier.classify(a) for a in alerts]
    triaged = await asyncio.gather(*map(pipeline.triage, batch))
    n = len(batch)
    return {
        "sections": len(components.library.sections()),
        "load": load,
        "classify": await timed(1, lambda: list(map(components.classifier.classify, alerts))) / n,
        "find": await timed(1, lambda: list(map(components.finder.find, alerts, classes))) / n,
        "triage": await timed(1, lambda: asyncio.gather(*map(pipeline.triage, batch))) / n,
        "render": await timed(1, lambda: list(map(slack.render, triaged))) / n,
        "found": sum(1 for r in triaged if r.runbook is not None),
    }


async def by_store_size(sizes: list[int], tmp: Path) -> None:
    print(
        "\nstore size: microseconds per history read and per retention batch of 100 "
        "(x the smallest store)"
    )
    keys = ["known", "new", "prune"]
    print(f"{'states':>8}" + "".join(f"{k:>16}" for k in ["history", "history (new fp)", "prune"]))
    first: dict[str, float] | None = None
    for size in sizes:
        store = await open_store(f"sqlite+aiosqlite:///{tmp / f'history-{size}.db'}")
        try:
            await fill_store(store, size)
            history = History(store.db, store.clock)
            last = (size - 1) // 2  # the newest pair: its alert fired within the last days
            name = f"Alert{last % 100}"
            known = stored_alert(f"fp{last % (size // 10)}", name)
            new = stored_alert("never-seen", name)
            assert await history.of(known) is not None and await history.of(new) is not None
            row = {
                "known": await timed(20, lambda h=history, a=known: h.of(a)),
                "new": await timed(20, lambda h=history, a=new: h.of(a)),
                "prune": await timed(
                    1, lambda db=store.db: prune(db, time.time() - 30 * 86400, 100)
                ),
            }
        finally:
            await store.close()
        first = first or row
        print(f"{size:8d}" + cells(row, first, keys))


def stored_alert(fingerprint: str, name: str, starts: float = 0.0, status: str = "firing") -> Any:
    from router.alerts import Alert

    labels = {"alertname": name, "namespace": "shop", "pod": f"pod-{fingerprint}"}
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(starts or time.time()))
    ended = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((starts or time.time()) + 540))
    return Alert.model_validate(
        {"status": status, "labels": labels, "startsAt": started, "fingerprint": fingerprint,
         "endsAt": ended if status == "resolved" else None}
    )  # fmt: skip


async def fill_store(store: Store, size: int) -> None:
    """``size`` finished alert states: firing + resolved pairs over 45 days, 100 alert names."""
    now = time.time()
    events, latest = [], {}
    for i in range(size):
        fingerprint, name = f"fp{(i // 2) % (size // 10)}", f"Alert{(i // 2) % 100}"
        received = now - (size - i) * (45 * 86400 / size)
        alert = stored_alert(
            fingerprint, name, received - (i % 2) * 540, ("firing", "resolved")[i % 2]
        )
        events.append({
            "id": i + 1, "state_key": f"{fingerprint}|{i}", "fingerprint": fingerprint,
            "alertname": name, "status": alert.status, "payload_id": 1,
            "alert_json": alert.model_dump_json(), "receiver": "r", "group_key": "g",
            "external_url": "", "received_at": received, "available_at": received,
            "state": "done", "result_json": "{}",
        })  # fmt: skip
        latest[fingerprint] = {"fingerprint": fingerprint, "alertname": name,
                               "status": alert.status, "last_event_id": i + 1, "updated_at": received}  # fmt: skip
    async with store.db.write() as conn:
        await conn.execute(payloads.insert(), [{"id": 1, "received_at": now, "receiver": "r", "group_key": "g", "body": "{}"}])  # fmt: skip
        for start in range(0, size, 5000):
            await conn.execute(alert_events.insert(), events[start : start + 5000])
        await conn.execute(alerts.insert(), list(latest.values()))


async def profile_render() -> None:
    """Where rendering the Slack message goes: cProfile's top functions by cumulative time."""
    import cProfile
    import pstats

    with tempfile.TemporaryDirectory(prefix="bench-growth-") as tmp:
        settings = Settings(data_dir=Path(tmp))
        pipeline, slack = build(settings, load_components(settings))
        batch = results_of(payload(alerts_for(300, "prof"), "Profile"))
        triaged = await asyncio.gather(*map(pipeline.triage, batch))
        profiler = cProfile.Profile()
        profiler.runcall(lambda: [slack.render(r) for r in triaged])
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payload-sizes", type=int, nargs="+", default=[1, 10, 100, 1000])
    parser.add_argument("--library-sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--alerts", type=int, default=1000, help="alerts per payload-size row")
    parser.add_argument("--store-sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--only-store", action="store_true", help="only the store-size rows")
    parser.add_argument("--quick", action="store_true", help="fewer alerts per row")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile SlackSink.render of 300 alerts, then stop"
    )
    args = parser.parse_args()
    if args.quick:
        global ROUNDS
        args.alerts, ROUNDS = 300, 1
    if args.profile:
        await profile_render()
        return
    print(f"machine: {machine()}; in-process, SQLite on local disk, no live backend")
    with tempfile.TemporaryDirectory(prefix="bench-growth-") as tmp:
        if not args.only_store:
            await by_payload_size(args.payload_sizes, args.alerts, Path(tmp))
            await by_library_size(args.library_sizes, 150 if args.quick else 300, Path(tmp))
        await by_store_size(args.store_sizes[:2] if args.quick else args.store_sizes, Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
