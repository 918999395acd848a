"""Event-loop stalls from one alert with thousands of labels.

A real router process (SQLite, the Slack sink posting to the test suite's fake Slack over
real HTTP, no diagnostics backend) gets one
webhook whose alert carries N extra labels (N = 10, 1,000, 5,000), or an alert
expression of the classifier's worst shape (2 KB and 100 KB), while a client polls
``GET /healthz`` every 5 ms. A request that waits is the event loop held by CPU work
(parsing, storing, classifying, rendering): the longest ``/healthz`` answer while the
alert is acknowledged and triaged is the stall. Baseline: the same polling with the
router idle, in the same run.

    python bench/label_flood.py
    python bench/label_flood.py --quick
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import (
    TimedSlack,
    alert,
    machine,
    payload,
    percentile,
    router_env,
    write_config,
)
from tests.harness.fake_slack import FakeSlackServer
from tests.procs import RouterProcess

POLL_SECONDS = 0.005
# Expressions of the classifier's worst shape (a long chain of binary operators).
EXPRESSIONS = {
    "expr 2 KB of `up + …`": ("up + " * 410)[:2040] + "up",
    "expr 100 KB of `up + …`": "up + " * 20_000 + "up",
}


def poll(url: str, stop: threading.Event) -> list[float]:
    """``/healthz`` answer times in ms, every POLL_SECONDS until ``stop``."""
    times: list[float] = []
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            with contextlib.suppress(httpx.TimeoutException):  # counted: 30 s or more
                client.get(f"{url}/healthz")
            times.append((time.perf_counter() - started) * 1000)
            time.sleep(POLL_SECONDS)
    return times


def polled_while(url: str, work) -> tuple[list[float], float]:
    """Poll while ``work()`` runs; the answer times and the work's wall time in seconds."""
    stop = threading.Event()
    result: list[list[float]] = []
    poller = threading.Thread(target=lambda: result.append(poll(url, stop)))
    poller.start()
    time.sleep(0.2)
    started = time.perf_counter()
    work()
    elapsed = time.perf_counter() - started
    stop.set()
    poller.join()
    return result[0], elapsed


def flood(url: str, slack: TimedSlack, labels: int, n: int, expr: str = "up == 0") -> None:
    """Post one alert with ``labels`` extra labels; return once its Slack message arrived."""
    fingerprint = f"flood{n:011d}"
    extra = {f"label_{i:05d}": f"value-{i:05d}-{'x' * 40}" for i in range(labels)}
    body = payload(
        [alert("LabelFlood", fingerprint, {"namespace": "shop", **extra}, expr)], "flood"
    )
    answer = httpx.post(
        f"{url}/alertmanager", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 202, answer.text
    deadline = time.monotonic() + 120
    while not slack.posted.get(fingerprint):
        if time.monotonic() > deadline:
            raise RuntimeError(f"alert {fingerprint} not triaged in 120 s")
        time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5,000 labels only")
    args = parser.parse_args()
    sizes = [5000] if args.quick else [10, 1000, 5000]
    slack = TimedSlack()
    slack.add_channel("#alerts")
    server = FakeSlackServer(slack)
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp), slack={"api_url": server.api_url})
        router = RouterProcess(Path(tmp), router_env(config)).start()
        try:
            print(machine())
            print(
                f"{'case':<22} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'wall s':>7}"
            )
            idle, wall = polled_while(router.url, lambda: time.sleep(2))
            report("idle (baseline)", idle, wall)
            for n, labels in enumerate(sizes):
                times, wall = polled_while(
                    router.url, lambda labels=labels, n=n: flood(router.url, slack, labels, n)
                )
                report(f"{labels:,} labels", times, wall)
            for n, (case, expr) in enumerate(EXPRESSIONS.items(), len(sizes)):
                times, wall = polled_while(
                    router.url, lambda n=n, expr=expr: flood(router.url, slack, 0, n, expr)
                )
                report(case, times, wall)
        finally:
            router.terminate()
            server.stop()


def report(case: str, times: list[float], wall: float) -> None:
    print(
        f"{case:<22} {len(times):>8} {percentile(times, 0.5):>8.1f} "
        f"{percentile(times, 0.99):>8.1f} {max(times):>8.1f} {wall:>7.2f}"
    )


if __name__ == "__main__":
    main()
