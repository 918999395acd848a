"""Worker triage CPU: the worker's real triage loop over a store of storm alerts.

In one process: ``--alerts`` storm alerts (``bench/storm.py``'s five families, 10 per
webhook, a distinct pod each) are ingested into a fresh SQLite store, then the worker's
job loops (``router.worker.Triages`` under ``router.leased.LeasedLoop``, as ``work``
runs them) claim, triage (classify, runbook section, diagnostics with no provider, the
alert's history, the commands filled) and render them for the Slack sink, and record each
result with its outbox rows. Nothing is delivered. Reported: CPU per alert of the whole
process (``getrusage``: every thread, SQLite's included) from the first claim until the
queue is empty. ``--profile FILE`` writes a pyinstrument text report (``pip install
pyinstrument`` into .venv); its figures are ~1.5x slower than without it.

    python bench/worker_cpu.py [--alerts 1000] [--profile /tmp/worker.txt]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.storm import webhooks
from bench.support import machine, write_config
from router.alerts import WebhookPayload
from router.config import load_settings
from router.leased import LeasedLoop
from router.service import load_components, open_runtime
from router.worker import Triages


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--profile", type=Path, help="pyinstrument text report here")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-worker-cpu-") as tmp:
        slack = {"api_url": "http://127.0.0.1:9/api/", "storm_threshold_per_minute": 20}
        settings = load_settings(write_config(Path(tmp), slack=slack))
        runtime = await open_runtime(settings, load_components(settings))
        bodies, _ = webhooks(args.alerts, 10, "wc")
        for body in bodies:
            await runtime.store.ingest(WebhookPayload.model_validate_json(body))
        workers, stopping = runtime.workers, asyncio.Event()
        profiler = None
        if args.profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005, async_mode="disabled")
            profiler.start()
        cpu, began = cpu_seconds(), time.monotonic()
        loops = [
            LeasedLoop(Triages(workers), f"bench/job-{i}", workers.loop_options(), stopping)
            for i in range(workers.settings.count)
        ]
        tasks = [asyncio.create_task(loop()) for loop in loops]
        while await runtime.store.depth() > 0:
            await asyncio.sleep(0.05)
        cpu, wall = cpu_seconds() - cpu, time.monotonic() - began
        stopping.set()
        for loop in loops:
            loop.wake()
        await asyncio.gather(*tasks)
        if profiler is not None:
            profiler.stop()
            args.profile.write_text(profiler.output_text(unicode=False, color=False))
        await runtime.close(5)
    print(
        f"{args.alerts} alerts triaged in {wall:.1f} s: {cpu * 1000 / args.alerts:.2f} ms CPU "
        "per alert (target <= 3 ms)"
    )


if __name__ == "__main__":
    asyncio.run(main())
