"""``serve --workers N`` and ``work``: triage and delivery in their own, lower-priority processes."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests import factories
from tests.harness.waiting import eventually_sync
from tests.pg import fresh_database
from tests.procs import RouterProcess
from tests.test_serve import post, wait_for_text

TOKEN = "processes-t0k"


def environment(tmp_path: Path) -> dict[str, str]:
    return {
        "ROUTER_CONSOLE_PATH": str(tmp_path / "console.txt"),
        "ROUTER_WEBHOOK_TOKEN": TOKEN,
        "ROUTER_WORKER_POLL_SECONDS": "0.05",
    }


def worker_pids(log: Path, count: int) -> list[int]:
    def taking_work() -> list[int]:
        pids = [int(p) for p in re.findall(r"worker process (\d+) taking work", log.read_text())]
        return pids if len(pids) >= count else []

    return eventually_sync(
        taking_work, 20, lambda: f"{count} worker processes to take work:\n{log.read_text()}"
    )


def niceness(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])  # field 19 of proc(5), counted after the command name


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def delivered(console: Path, names: list[str], timeout: float = 30) -> str:
    def output() -> str:
        return console.read_text() if console.exists() else ""

    def missing() -> list[str]:
        return [n for n in names if f"==> [FIRING] {n} " not in output()]

    def all_delivered() -> str:
        text = output()
        return text if all(f"==> [FIRING] {n} " in text for n in names) else ""

    return eventually_sync(all_delivered, timeout, lambda: f"delivery of {missing()}", 0.1)


def scraped(router: RouterProcess, text: str) -> str:
    """``/metrics`` once it contains ``text`` (a worker records its counts after delivering)."""

    def metrics() -> str:
        page = httpx.get(f"{router.url}/metrics", timeout=5).text
        return page if text in page else ""

    return eventually_sync(metrics, 10, f"{text} in /metrics", 0.1)


def test_workers_run_apart_at_a_lower_priority_and_stop_with_sigterm(tmp_path: Path) -> None:
    router = RouterProcess(tmp_path, environment(tmp_path), args=["--workers", "2"]).start()
    names = [f"Apart{i}" for i in range(40)]
    try:
        pids = worker_pids(router.log_path, 2)
        assert router.process is not None and router.process.pid not in pids
        web = niceness(router.process.pid)
        assert [niceness(pid) for pid in pids] == [web + 10, web + 10]
        assert httpx.get(f"{router.url}/readyz", timeout=5).json()["checks"]["workers"] is True
        for name in names:
            assert post(router, factories.alert(name), token=TOKEN).status_code == 202
        output = delivered(tmp_path / "console.txt", names)
        metrics = scraped(router, 'runbook_router_deliveries_total{outcome="delivered"')
    finally:
        assert router.terminate() == 0
    assert all(output.count(f"==> [FIRING] {n} ") == 1 for n in names)
    # the web process's scrape adds up what both workers counted
    assert 'runbook_router_jobs_processed_total{outcome="done"} 40.0' in metrics
    assert 'runbook_router_alerts_received_total{status="firing"} 40.0' in metrics
    assert not any(alive(pid) for pid in pids)
    log = router.log_path.read_text()
    assert all(f"worker process {pid} stopped" in log for pid in pids)
    assert "runbook-router stopped" in log


def test_a_worker_process_that_dies_is_replaced_and_its_work_is_done(tmp_path: Path) -> None:
    env = {**environment(tmp_path), "ROUTER_WORKER_LEASE_SECONDS": "1"}
    router = RouterProcess(tmp_path, env, args=["--workers", "1"]).start()
    try:
        (first,) = worker_pids(router.log_path, 1)
        os.kill(first, signal.SIGKILL)
        assert post(router, factories.alert("AfterAWorkerDied"), token=TOKEN).status_code == 202
        wait_for_text(router.log_path, f"worker process {first} exited (-9), starting another")
        delivered(tmp_path / "console.txt", ["AfterAWorkerDied"])
    finally:
        assert router.terminate() == 0


def test_killing_the_web_process_takes_its_workers_with_it(tmp_path: Path) -> None:
    router = RouterProcess(tmp_path, environment(tmp_path), args=["--workers", "2"]).start()
    pids = worker_pids(router.log_path, 2)
    router.kill()
    eventually_sync(
        lambda: not any(alive(pid) for pid in pids), 10, "the workers to die with the web process"
    )


def test_a_worker_whose_web_process_died_before_it_started_does_not_outlive_it(
    tmp_path: Path,
) -> None:
    """The web process killed while its worker was still starting: the worker finds it is
    an orphan (its parent is not the web process that started it) and ends at once."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a web process that is no more
    env = {**os.environ, **environment(tmp_path), "ROUTER_DATA_DIR": str(tmp_path / "data")}
    worker = subprocess.Popen(
        [sys.executable, "-m", "router", "work", "--supervised", str(gone.pid)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert worker.wait(timeout=30) == -signal.SIGKILL
    finally:
        worker.kill()


def test_work_runs_alone_and_shares_the_queue_with_serve(tmp_path: Path) -> None:
    env = environment(tmp_path)
    router = RouterProcess(tmp_path, env, args=["--workers", "1"]).start()
    log = tmp_path / "work.log"
    with log.open("wb") as out:
        alone = subprocess.Popen(
            [sys.executable, "-m", "router", "work"],
            cwd=tmp_path,
            env={**router.env, "ROUTER_WORKR_COUNT": "2"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    names = [f"Shared{i}" for i in range(30)]
    try:
        wait_for_text(log, f"worker process {alone.pid} taking work")
        for name in names:
            assert post(router, factories.alert(name), token=TOKEN).status_code == 202
        output = delivered(tmp_path / "console.txt", names)
    finally:
        alone.send_signal(signal.SIGTERM)
        alone.wait(20)
        assert router.terminate() == 0
    assert alone.returncode == 0
    assert all(output.count(f"==> [FIRING] {n} ") == 1 for n in names)
    logged = log.read_text()
    assert "ROUTER_WORKR_COUNT: did you mean ROUTER_WORKER_COUNT?" in logged  # not supervised
    assert f"worker process {alone.pid} taking work (niceness {os.nice(0)})" in logged
    assert f"worker process {alone.pid} stopped" in logged


@pytest.mark.parametrize("value", ["-1", "two", "65"])
def test_a_bad_worker_count_is_a_usage_error(tmp_path: Path, value: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "router", "serve", "--workers", value],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert f"--workers: expected a whole number from 0 to 64, not {value!r}" in done.stderr
    assert "Traceback" not in done.stderr


@contextlib.asynccontextmanager
async def backend_environment(backend: str) -> AsyncIterator[dict[str, str]]:
    """The variables that put the router on ``backend``: SQLite in a directory with a short
    path (a unix socket's path has at most 107 bytes), or a fresh PostgreSQL database."""
    if backend == "postgresql":
        async with fresh_database() as url:
            yield {"ROUTER_DATABASE_URL": url}
        return
    data = tempfile.mkdtemp(prefix="rr-wake-")
    try:
        yield {"ROUTER_DATA_DIR": data}
    finally:
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.parametrize(
    ("backend", "workers"),
    [
        ("sqlite", 2),
        ("sqlite", 0),  # in the web process: woken directly
        pytest.param("postgresql", 2, marks=pytest.mark.postgres),
    ],
)
async def test_a_webhook_wakes_the_workers_long_before_their_next_poll(
    tmp_path: Path, backend: str, workers: int
) -> None:
    """The workers poll once a minute: only a wake-up delivers within the deadline."""
    async with backend_environment(backend) as database:
        env = {**environment(tmp_path), **database, "ROUTER_WORKER_POLL_SECONDS": "60"}
        router = RouterProcess(tmp_path, env, args=["--workers", str(workers)]).start()
        try:
            if workers:
                worker_pids(router.log_path, workers)
            for name in ("WokenOnce", "WokenAgain"):
                assert post(router, factories.alert(name), token=TOKEN).status_code == 202
                delivered(tmp_path / "console.txt", [name], timeout=15)
        finally:
            assert router.terminate() == 0
    if backend == "sqlite" and workers:
        directory = Path(database["ROUTER_DATA_DIR"]) / "router.db-doorbell"
        assert not directory.exists() or not os.listdir(directory)  # each removed its socket


@pytest.mark.postgres
async def test_worker_processes_listen_again_after_losing_their_connection(
    tmp_path: Path,
) -> None:
    async with fresh_database() as url:
        env = {
            **environment(tmp_path),
            "ROUTER_DATABASE_URL": url,
            "ROUTER_WORKER_POLL_SECONDS": "60",
        }
        router = RouterProcess(tmp_path, env, args=["--workers", "1"]).start()
        admin = await asyncpg.connect(url)
        listening = (
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
        )
        try:
            worker_pids(router.log_path, 1)
            (first,) = [row["pid"] for row in await admin.fetch(listening)]
            await admin.execute("SELECT pg_terminate_backend($1)", first)
            wait_for_text(router.log_path, "doorbell: listening for new work again")
            assert post(router, factories.alert("AfterReconnect"), token=TOKEN).status_code == 202
            delivered(tmp_path / "console.txt", ["AfterReconnect"], timeout=15)
        finally:
            await admin.close()
            assert router.terminate() == 0
    assert "lost the connection it listens on" in router.log_path.read_text()
