"""Failover: two replicas share PostgreSQL; one is SIGKILLed with claimed work in flight.

Both routers (``runbook-router serve``, Slack sink at the test suite's fake over real
HTTP, ``worker.lease_seconds`` = ``--lease``) take webhooks in turn. Slack answers
``chat.postMessage`` ``--slow`` seconds late (having posted), so each replica always
holds posts in flight. Half-way through, one replica is killed. Reported: how long
after the kill the other finished the dead one's work (every alert posted), and
alerts posted more than once (must be 0). Baseline: the same run without a kill.

    python bench/failover.py               # 100 alerts, lease 15 s
    python bench/failover.py --lease 4     # a shorter lease: faster failover
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import TimedSlack, alert, machine, payload, router_env, write_config
from tests.harness.fake_slack import FakeSlackServer
from tests.pg import fresh_database
from tests.procs import RouterProcess

TOKEN = "bench-failover-token"
TEAMS = 10


def post(urls: list[str], run: str, n: int) -> str:
    fp = f"{run}{n:05d}"
    body = payload([alert(f"Failover{n}", fp, {"team": f"t{n % TEAMS}"}, "up == 0")], fp)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    for url in urls[n % len(urls) :] + urls[: n % len(urls)]:
        try:
            if httpx.post(f"{url}/alertmanager", content=body, headers=headers).is_success:
                return fp
        except httpx.HTTPError:
            continue  # that replica is dead: Alertmanager would try the next
    raise SystemExit("no replica accepted the webhook")


def scenario(args: argparse.Namespace, db_url: str, kill: bool) -> tuple[float, int]:
    """Seconds from the kill (or the last webhook) until every alert was posted; duplicates."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        slack = TimedSlack()
        for team in range(TEAMS):
            slack.add_channel(f"#team-t{team}")
        slack.answer_late("chat.postMessage", args.slow, times=10**6)
        server = FakeSlackServer(slack)
        config = write_config(
            workdir,
            database={"url": db_url},
            webhook={"token": TOKEN},
            worker={"lease_seconds": args.lease, "poll_seconds": 0.2},
            slack={
                "api_url": server.api_url,
                "channel_template": "#team-{{ labels.team }}",
                "rate_per_second": 50,
                "burst": 10,
                "storm_threshold_per_minute": 10_000,
                "timeout_seconds": args.slow + 5,
            },
        )
        env = router_env(config, "warning")
        replicas = [RouterProcess(workdir, env).start() for _ in range(2)]
        try:
            urls = [r.url for r in replicas]
            run = "k" if kill else "b"
            sent = [post(urls, run, n) for n in range(args.alerts // 2)]
            time.sleep(args.slow / 2)  # posts are in flight on both replicas
            if kill:
                replicas[0].kill()
                urls = urls[1:]
            start = time.monotonic()
            sent += [post(urls, run, n) for n in range(args.alerts // 2, args.alerts)]
            if not kill:
                start = time.monotonic()
            while not set(sent) <= set(slack.posted):
                if time.monotonic() - start > 300:
                    raise SystemExit("not all delivered within 300 s")
                time.sleep(0.05)
            took = time.monotonic() - start
            duplicates = sum(1 for times in slack.posted.values() if len(times) > 1)
            return took, duplicates
        finally:
            for replica in replicas:
                if replica.process and replica.process.poll() is None:
                    replica.terminate()
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100)
    parser.add_argument("--lease", type=float, default=15.0)
    parser.add_argument("--slow", type=float, default=1.0, help="Slack answers this late")
    args = parser.parse_args()
    print(f"machine: {machine()}")

    async def database() -> None:
        async with fresh_database() as url:
            for kill in (False, True):
                took, dups = await asyncio.to_thread(scenario, args, url, kill)
                what = "one replica killed" if kill else "baseline, no kill"
                since = "the kill" if kill else "the last webhook"
                print(
                    f"{what}: {args.alerts} alerts, lease {args.lease:g} s (heartbeat "
                    f"{args.lease / 2:g} s): all posted {took:.1f} s after {since}; "
                    f"duplicates: {dups}"
                )

    asyncio.run(database())


if __name__ == "__main__":
    main()
