"""Outage recovery: both sinks down while alerts arrive, then back; exactly once, how fast.

One router (``runbook-router serve``, SQLite, Slack and PagerDuty sinks at the test
suite's fakes over real HTTP(S)) receives ``--alerts`` alerts spread over 20 channels
at Slack's default flow control (1 message/s per channel, bursts of 3). First the
baseline: a batch delivered with both sinks up. Then both sinks answer 503 to every
call for ``--outage`` seconds while the same number of new alerts arrive, and come
back. Reported: time from recovery until every alert has its Slack message and its
PagerDuty incident, alerts posted or triggered more than once (must be 0), and the
webhook ack latency (p50/p99) throughout the outage.

    python bench/outage.py                    # 200 alerts, 60 s outage (~2.5 min)
    python bench/outage.py --quick            # 60 alerts, 20 s outage (~1 min)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bench.support import TimedSlack, alert, machine, payload, percentile, router_env, write_config
from tests.harness.fake_pagerduty import API_TOKEN, FakePagerDuty, FakePagerDutyServer
from tests.harness.fake_slack import FakeSlackServer
from tests.procs import RouterProcess

ROUTING_KEY = "R0BENCH0OUTAGE0123456789abcdef0"
TEAMS = 20
TOKEN = "bench-outage-token"


class DownSlack(TimedSlack):
    """The fake Slack, answering 503 to everything while ``down``."""

    down = False

    async def handle(self, request: Request) -> Response:
        if self.down:
            return JSONResponse({"ok": False, "error": "service_unavailable"}, 503)
        return await super().handle(request)


class DownPagerDuty(FakePagerDuty):
    """The fake PagerDuty, answering 503 to everything while ``down``."""

    down = False

    async def handle(self, request: Request) -> Response:
        if self.down:
            return JSONResponse({"status": "unavailable"}, 503)
        return await super().handle(request)


@dataclass
class Phase:
    sent_at: float
    ended: float  # when the last webhook was acknowledged
    fingerprints: list[str]
    acks: list[float]


def send(url: str, run: str, count: int, seconds: float) -> Phase:
    """``count`` alerts, one per webhook, evenly over ``seconds``; ack latency of each."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    fingerprints, acks, started = [], [], time.monotonic()
    with httpx.Client(timeout=10, headers=headers) as client:
        for n in range(count):
            due = started + n * seconds / max(count, 1)
            time.sleep(max(0.0, due - time.monotonic()))
            fp = f"{run}{n:05d}"
            labels = {"team": f"t{n % TEAMS}", "instance": fp}
            body = payload([alert(f"Outage{n}", fp, labels, "up == 0")], f"Outage{n}")
            before = time.monotonic()
            response = client.post(f"{url}/alertmanager", content=body)
            acks.append(time.monotonic() - before)
            assert response.status_code == 202, response.text
            fingerprints.append(fp)
    return Phase(started, time.monotonic(), fingerprints, acks)


def wait_delivered(slack: DownSlack, pd: DownPagerDuty, phase: Phase, limit: float) -> float:
    """Seconds until every alert of ``phase`` has a Slack post and a PagerDuty incident."""
    started = time.monotonic()
    wanted = set(phase.fingerprints)
    while time.monotonic() - started < limit:
        incidents = {i.incident_key.removeprefix("runbook-router-") for i in pd.incidents}
        if wanted <= set(slack.posted) and wanted <= incidents:
            return time.monotonic()
        time.sleep(0.1)
    missing = len(wanted - set(slack.posted))
    raise SystemExit(f"not all delivered within {limit:g} s ({missing} Slack posts missing)")


def duplicates(slack: DownSlack, pd: DownPagerDuty) -> tuple[int, int, int]:
    """Alerts posted twice to Slack, with two incidents, with two triage notes."""
    posts = sum(1 for times in slack.posted.values() if len(times) > 1)
    incidents = Counter(i.incident_key for i in pd.incidents)
    notes = sum(1 for i in pd.incidents if len(i.notes) > 1)
    return posts, sum(1 for n in incidents.values() if n > 1), notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--outage", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="60 alerts, 20 s outage")
    args = parser.parse_args()
    if args.quick:
        args.alerts, args.outage = 60, 20.0
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        slack, pd = DownSlack(), DownPagerDuty(services={ROUTING_KEY: "shop"})
        for team in range(TEAMS):
            slack.add_channel(f"#team-t{team}")
        slack_server, pd_server = FakeSlackServer(slack), FakePagerDutyServer(pd, workdir)
        config = write_config(
            workdir,
            webhook={"token": TOKEN},
            worker={"lease_seconds": 15},
            slack={
                "api_url": slack_server.api_url,
                "channel_template": "#team-{{ labels.team }}",
                "timeout_seconds": 5,
            },
            pagerduty={
                "routing_key": ROUTING_KEY,
                "events_url": pd_server.url,
                "api_url": pd_server.url,
                "api_token": API_TOKEN,
                "from": "bench@example.com",
                "ca_file": str(pd_server.ca_file),
                "timeout_seconds": 5,
            },
        )
        router = RouterProcess(workdir, router_env(config, "warning")).start()
        try:
            run(args, router.url, slack, pd)
        finally:
            router.terminate()
            slack_server.stop()
            pd_server.stop()


def run(args: argparse.Namespace, url: str, slack: DownSlack, pd: DownPagerDuty) -> None:
    spread = min(args.outage * 0.8, 30.0)
    base = send(url, "base", args.alerts, spread)
    base_done = wait_delivered(slack, pd, base, 300)
    print(
        f"baseline, sinks up: {args.alerts} alerts sent over {spread:g} s, all delivered "
        f"{max(0.0, base_done - base.ended):.1f} s after the last was acknowledged; ack p50 "
        f"{percentile(base.acks, 0.5) * 1000:.1f} ms, p99 {percentile(base.acks, 0.99) * 1000:.1f} ms"
    )
    slack.down = pd.down = True
    down_at = time.monotonic()
    sender: dict[str, Phase] = {}
    thread = threading.Thread(
        target=lambda: sender.update(phase=send(url, "down", args.alerts, spread))
    )
    thread.start()
    time.sleep(max(0.0, down_at + args.outage - time.monotonic()))
    thread.join()
    slack.down = pd.down = False
    recovered = time.monotonic()
    phase = sender["phase"]
    done = wait_delivered(slack, pd, phase, 600)
    posts, incidents, notes = duplicates(slack, pd)
    print(
        f"outage of {args.outage:g} s, {args.alerts} alerts sent during it: all delivered "
        f"{done - recovered:.1f} s after recovery; duplicates: {posts} Slack posts, "
        f"{incidents} PagerDuty incidents, {notes} notes; ack during the outage p50 "
        f"{percentile(phase.acks, 0.5) * 1000:.1f} ms, p99 {percentile(phase.acks, 0.99) * 1000:.1f} ms"
    )
    calls: dict[str, Any] = Counter(c.method for c in slack.calls)
    print(f"Slack calls: {dict(calls)}")


if __name__ == "__main__":
    main()
