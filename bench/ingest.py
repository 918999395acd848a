"""Ingest benchmark: webhooks/second and ack latency, beside a do-nothing baseline.

Both servers run as separate uvicorn processes with the same settings; the
baseline is a bare starlette app that reads the body and answers 202 (the
ceiling). The router runs as in production (``runbook-router serve``: durable
store, worker processes triaging in the background, console sink writing to /dev/null);
``--in-process`` also measures ``serve --workers 0`` (the workers in the web process).

    python bench/ingest.py                      # SQLite and PostgreSQL, 1 and 50 alerts
    python bench/ingest.py --backends sqlite --seconds 3

Each scenario prints throughput at fixed concurrency and latency at a fixed
arrival rate, with the router/baseline ratio (the ratio survives a noisy machine).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loadgen import Connections  # noqa: E402
from tests.procs import free_port  # noqa: E402

PG_ADMIN = os.environ.get("ROUTER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
_counter = itertools.count()


def payload(alerts: int) -> bytes:
    """A webhook whose alerts are all new (distinct fingerprints), as in a real stream."""
    n = next(_counter)
    return json.dumps(
        {
            "version": "4",
            "groupKey": f'{{}}:{{alertname="Bench{n}"}}',
            "status": "firing",
            "receiver": "bench",
            "externalURL": "http://alertmanager:9093",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {
                        "alertname": f"Bench{n}",
                        "instance": f"i{i}",
                        "severity": "warning",
                    },
                    "annotations": {"summary": "benchmark"},
                    "startsAt": "2026-11-22T10:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus:9090/graph?g0.expr=up%20%3D%3D%200",
                    "fingerprint": f"{n:010x}{i:06x}",
                }
                for i in range(alerts)
            ],
        }
    ).encode()


class Server:
    def __init__(self, kind: str, database_url: str | None, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}
        if kind == "baseline":
            argv = [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--port", str(self.port)]
            argv += ["--no-access-log", "--log-level", "warning"]
        else:
            argv = [sys.executable, "-m", "router", "serve", "--port", str(self.port)]
            if kind == "web-only":
                argv = [sys.executable, "-m", "bench.web_only", str(self.port)]
            elif kind == "in-process":
                argv += ["--workers", "0"]
            env |= {
                "ROUTER_DATA_DIR": str(workdir / "data"),
                "ROUTER_CONSOLE_PATH": os.devnull,
                "ROUTER_LOG_LEVEL": "warning",
            }
            if database_url:
                env["ROUTER_DATABASE_URL"] = database_url
        self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)

    async def ready(self) -> None:
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    if (await client.get(f"{self.url}/healthz")).status_code in (200, 404):
                        return
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(20)


async def post(pool: Connections, alerts: int, latencies: list[float], since: float) -> None:
    """One webhook; its latency counts from ``since`` (the time it was due to be sent)."""
    status = await pool.post("/alertmanager", payload(alerts))
    latencies.append(time.perf_counter() - since)
    if status != 202:
        raise RuntimeError(f"unexpected HTTP {status}")


async def closed_loop(url: str, alerts: int, concurrency: int, seconds: float) -> dict:
    """Fixed concurrency, as fast as the server answers."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    pool = Connections(url, concurrency)

    async def user() -> None:
        while time.perf_counter() < deadline:
            await post(pool, alerts, latencies, time.perf_counter())

    started = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await pool.close()
    return {"rps": len(latencies) / elapsed, **percentiles(latencies)}


async def open_loop(url: str, alerts: int, rate: float, seconds: float) -> dict:
    """Requests arrive at a fixed rate whatever the server does: latency under load.

    Each request's latency counts from when it was due, so a client or server that
    falls behind shows up in the figures (no coordinated omission).
    """
    latencies: list[float] = []
    pool = Connections(url, 200)
    tasks = []
    started = time.perf_counter()
    for i in range(int(rate * seconds)):
        due = started + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(post(pool, alerts, latencies, due)))
    await asyncio.gather(*tasks)
    await pool.close()
    return {"rate": rate, **percentiles(latencies)}


def percentiles(latencies: list[float]) -> dict:
    ordered = sorted(latencies)
    q = statistics.quantiles(ordered, n=100) if len(ordered) > 1 else ordered * 99
    return {"p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000, "n": len(ordered)}


async def fresh_postgres() -> str:
    import asyncpg

    name = f"rr_bench_{os.getpid()}_{next(_counter)}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


async def scenario(kind: str, backend: str, alerts: int, args: argparse.Namespace) -> dict:
    """Throughput and latency, each on a fresh server (a backlog would skew the other)."""
    throughput = await _phase(kind, backend, alerts, args, closed=True)
    latency = await _phase(kind, backend, alerts, args, closed=False)
    return {"throughput": throughput, "latency": latency}


async def _phase(
    kind: str, backend: str, alerts: int, args: argparse.Namespace, closed: bool
) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        database_url = (
            await fresh_postgres() if backend == "postgresql" and kind != "baseline" else None
        )
        server = Server(kind, database_url, Path(tmp))
        try:
            await server.ready()
            await closed_loop(server.url, alerts, 2, 0.3)  # warm up
            if closed:
                return await closed_loop(server.url, alerts, args.concurrency, args.seconds)
            return await open_loop(server.url, alerts, args.rate, args.seconds)
        finally:
            server.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--alerts", nargs="+", type=int, default=[1, 50])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--web-only", action="store_true", help="also measure the web app without its workers"
    )
    parser.add_argument("--in-process", action="store_true", help="also measure serve --workers 0")
    args = parser.parse_args()
    print(
        f"machine: {os.cpu_count()} cores; concurrency {args.concurrency}; "
        f"open-loop rate {args.rate:g}/s; {args.seconds:g} s per run"
    )
    header = (
        f"{'scenario':28} {'req/s':>8} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7} | "
        f"{'@rate p50':>9} {'p99':>6}"
    )
    print(header)
    for alerts in args.alerts:
        base = await scenario("baseline", "-", alerts, args)
        print(row(f"baseline, {alerts} alerts", base, base))
        for backend in args.backends:
            result = await scenario("router", backend, alerts, args)
            print(row(f"router {backend}, {alerts} alerts", result, base))
            if args.in_process:
                result = await scenario("in-process", backend, alerts, args)
                print(row("  workers in-process", result, base))
            if args.web_only:
                result = await scenario("web-only", backend, alerts, args)
                print(row("  web only (no workers)", result, base))


def row(name: str, result: dict, base: dict) -> str:
    t, lat = result["throughput"], result["latency"]
    ratio = t["rps"] / base["throughput"]["rps"]
    return (
        f"{name:28} {t['rps']:8.0f} {ratio:6.0%} {t['p50_ms']:7.1f} {t['p99_ms']:7.1f} | "
        f"{lat['p50_ms']:9.1f} {lat['p99_ms']:6.1f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
