"""Triage CPU per alert, stage by stage, without network time (issue 16's 3 ms target).

In one process, on the storm's five alert families with a distinct pod each: classify
and find the runbook section (``prepare``), diagnose with no provider reachable (the
playbook, its verdict rules and redaction; no network), the alert's history from a
SQLite store holding ``--stored`` earlier states, then every sink's rendering (Slack,
PagerDuty, console) and the result's JSON for the store. Baseline, same run: what any
worker pays per alert anyway (parsing the stored alert and writing its result JSON).
CPU is ``time.process_time()`` (every thread of the process, SQLite's included).

    python bench/triage_cpu.py [--alerts 1000] [--stored 2000]
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import machine
from router.alerts import Alert, WebhookPayload
from router.config import load_settings
from router.service import build_pipeline, build_sinks, load_components
from router.store import Store, open_store
from router.store.history import History
from router.triage import TriageResult
from tests import factories

FAMILIES = [
    ("LatencyP95Breaching", "histogram_quantile(0.95, rate(http_duration_seconds_bucket[5m])) > 1"),
    ("SLOAvailabilityFastBurn", 'sum(rate(http_requests_total{code=~"5.."}[5m])) > 1'),
    ("PodCrashLooping", "rate(kube_pod_container_status_restarts_total[15m]) > 0"),
    ("PostgresTooManyConnections", "pg_stat_activity_count > 90"),
    ("NodeFilesystemAlmostFull", "node_filesystem_avail_bytes < 1e9"),
]


def alerts(count: int, run: str) -> list[dict]:
    return [
        factories.alert(
            FAMILIES[i % len(FAMILIES)][0],
            labels={"namespace": "shop", "service": "api", "pod": f"api-{run}-{i}"},
            expr=FAMILIES[i % len(FAMILIES)][1],
        )
        for i in range(count)
    ]


async def filled_store(path: Path, count: int) -> Store:
    """A store with ``count`` earlier, triaged states of the same families."""
    store = await open_store(f"sqlite+aiosqlite:///{path}")
    earlier = alerts(count, "old")
    for start in range(0, count, 50):
        body = factories.payload(*earlier[start : start + 50])
        await store.ingest(WebhookPayload.model_validate(body))
        for job in await store.claim("bench", 50, 60):
            await store.complete(job, "bench", TriageResult.of(job).model_dump_json(), [])
    return store


async def per_alert(items: list, step: Callable) -> float:
    """Milliseconds of CPU per item for ``step`` (sync or async)."""
    started = time.process_time()
    for item in items:
        done = step(item)
        if asyncio.iscoroutine(done):
            await done
    return (time.process_time() - started) / len(items) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--stored", type=int, default=2000)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-triage-cpu-") as tmp:
        settings = load_settings(
            None,
            data_dir=tmp,
            slack={"bot_token": "xoxb-bench", "default_channel": "#alerts"},
            pagerduty={"routing_key": "R" * 32},
        )
        store = await filled_store(Path(tmp) / "history.db", args.stored)
        pipeline = build_pipeline(settings, load_components(settings), build_sinks(settings, store))
        history = History(store.db)
        raw = [json.dumps(a) for a in alerts(args.alerts, "new")]
        parsed = [Alert.model_validate_json(text) for text in raw]
        prepared = [pipeline.prepare(TriageResult(alert=a)) for a in parsed]
        diagnosed = [await pipeline.diagnose(r) for r in prepared]
        await per_alert(diagnosed[:50], pipeline.render)  # caches warm, as a worker's are

        rows = [
            ("baseline: parse the stored alert", await per_alert(raw, Alert.model_validate_json)),
            ("prepare: classify + runbook section", await per_alert(parsed, _prepare(pipeline))),
            (
                "diagnose (no provider) + fill commands",
                await per_alert(prepared, pipeline.diagnose),
            ),
            ("history (SQLite, new fingerprints)", await per_alert(parsed, history.of)),
            ("render: Slack + PagerDuty + console", await per_alert(diagnosed, pipeline.render)),
            ("result JSON for the store", await per_alert(diagnosed, _dump)),
        ]
        await store.close()
    print(f"{args.alerts} alerts, {args.stored} states in the store\n")
    print(f"{'stage':40} {'CPU ms/alert':>12}")
    for name, ms in rows:
        print(f"{name:40} {ms:12.2f}")
    total = sum(ms for name, ms in rows[1:])
    print(f"{'triage in all (without the baseline)':40} {total:12.2f}   (target <= 3 ms)")


def _prepare(pipeline):  # type: ignore[no-untyped-def]
    return lambda alert: pipeline.prepare(TriageResult(alert=alert))


def _dump(result: TriageResult) -> str:
    return result.model_dump_json()


if __name__ == "__main__":
    asyncio.run(main())
