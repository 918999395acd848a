"""Wiring: build the pipeline, store, workers and web app from :class:`Settings`, and run them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

import uvicorn

from router import heap
from router.alerts import WebhookPayload
from router.classify import EvidenceClassifier, RuleSet, load_rules
from router.classify.rules import read_rules
from router.config import Settings, unknown_variables
from router.diagnose import (
    PlaybookSet,
    build_diagnostics,
    build_providers,
    configured_playbooks,
    provider_problems,
)
from router.diagnose.base import Provider
from router.integrations.console import ConsoleSink
from router.library import LibraryFinder, RunbookLibrary
from router.logs import configure_logging
from router.metrics import Metrics
from router.pipeline import HistorySource, Pipeline, Sink
from router.processes import WorkerProcesses, become_supervised, worker_command
from router.redact import Redactor, secret_values
from router.retriage import Retriager
from router.store import Store, StoreUnavailable, open_store
from router.store.doorbell import doorbell, listen
from router.store.history import History
from router.triage import TriageResult
from router.web.app import create_app
from router.worker import Workers
from router.yamlfile import ConfigError, collect

log = logging.getLogger("router")


@dataclass(frozen=True)
class Components:
    """What the router loads from files: rules and runbooks, and the stages built on them."""

    library: RunbookLibrary
    rules: RuleSet
    playbooks: PlaybookSet
    classifier: EvidenceClassifier
    finder: LibraryFinder


def load_components(settings: Settings) -> Components:
    """Load runbooks, playbooks and rules; raises :class:`ConfigError` naming the file and line."""
    library = RunbookLibrary.load(settings.runbooks, base_url=settings.runbooks_base_url)
    playbooks = configured_playbooks(settings)
    rules = load_rules(settings.rules, playbooks.names(), relative_to=settings.config_dir)
    classifier = EvidenceClassifier(rules, library)
    return Components(library, rules, playbooks, classifier, LibraryFinder(library))


def check(settings: Settings) -> tuple[list[ConfigError], str]:
    """Every problem in the configuration, rules and runbooks (sorted by file and line), and a
    summary when there are none."""
    problems: list[ConfigError] = []
    library = collect(
        problems,
        lambda: RunbookLibrary.load(settings.runbooks, base_url=settings.runbooks_base_url),
    )
    playbooks = collect(problems, lambda: configured_playbooks(settings))
    rules, rule_problems = read_rules(
        settings.rules, playbooks.names() if playbooks else (), relative_to=settings.config_dir
    )
    problems += rule_problems
    if library is not None:
        problems += find_problems(settings, library, rules)
    if problems or library is None or playbooks is None:
        return sorted(problems, key=lambda p: p.sort_key), ""
    summary = (
        f"ok: {len(rules.rules)} rules, "
        f"{len(list(library.sections()))} runbook sections, "
        f"{len(playbooks.names())} playbooks, "
        f"sinks: {', '.join(sink_names(settings)) or 'none'}"
    )
    return [], summary


def find_problems(settings: Settings, library: RunbookLibrary, rules: RuleSet) -> list[ConfigError]:
    """What loads but will not work: broken runbook links, unknown routing key names,
    provider settings (a missing kubeconfig, an unreadable CA file, a malformed DSN)."""
    problems = [*library.problems, *rules.check_runbooks(library), *provider_problems(settings)]
    if "pagerduty" in sink_names(settings):
        problems += rules.check_routing_keys(settings.pagerduty.routing_keys)
    return problems


def sink_names(settings: Settings) -> list[str]:
    """The sinks the settings turn on, in delivery order."""
    names = ["slack"] if settings.slack.bot_token else []
    names += (
        ["pagerduty"] if settings.pagerduty.routing_key or settings.pagerduty.routing_keys else []
    )
    return names + (["console"] if settings.console_enabled else [])


def build_sinks(settings: Settings, store: Store) -> list[Sink]:
    secrets = secret_values(settings)
    sinks: list[Sink] = []
    for name in sink_names(settings):
        if name == "slack":
            from router.integrations.slack.sink import SlackSink

            sinks.append(SlackSink(settings.slack, store, settings.templates, secrets=secrets))
        elif name == "pagerduty":
            from router.integrations.pagerduty.sink import PagerDutySink

            sinks.append(PagerDutySink(settings.pagerduty, store, secrets=secrets))
        else:
            console = settings.console
            sinks.append(
                ConsoleSink(settings.templates, format=console_format(settings), path=console.path)
            )
    return sinks


def retriage_sinks(settings: Settings) -> list[Sink]:
    """The sink that answers Slack commands and buttons, when Slack's requests can be verified."""
    if settings.slack.signing_secret is None:
        return []
    from router.integrations.slack.response import SlackResponseSink

    slack = settings.slack
    return [SlackResponseSink(settings.templates, slack.timeout_seconds, api_url=slack.api_url)]


async def close_sinks(sinks: list[Sink]) -> None:
    for sink in sinks:
        try:
            await sink.aclose()
        except Exception:
            log.exception("closing the %s sink failed", sink.name)


def build_pipeline(
    settings: Settings,
    components: Components,
    sinks: list[Sink],
    providers: Mapping[str, Provider] | None = None,
    history: HistorySource | None = None,
) -> Pipeline:
    return Pipeline(
        classifier=components.classifier,
        runbooks=components.finder,
        diagnoser=build_diagnostics(
            settings, components.playbooks, components.library, providers or {}
        ),
        sinks=sinks,
        deadline_seconds=settings.diagnostics.deadline_seconds,
        history=history,
    )


async def triage_payload(
    settings: Settings, payload: WebhookPayload, *, as_json: bool
) -> list[str]:
    """The ``triage`` verb: run the stages for each alert and render them, posting nothing."""
    providers = build_providers(settings, secret_values(settings))
    pipeline = build_pipeline(settings, load_components(settings), [], providers)
    console = ConsoleSink(settings.templates, format="json" if as_json else "text")
    try:
        results = await asyncio.gather(
            *(
                pipeline.triage(
                    TriageResult(
                        alert=alert,
                        external_url=payload.externalURL,
                        receiver=payload.receiver,
                        group_key=payload.groupKey,
                    )
                )
                for alert in payload.alerts
            )
        )
    finally:
        await asyncio.gather(*(p.close() for p in providers.values()))
    return [
        console.render_text(result, destinations=destinations(settings, result))
        for result in results
    ]


def destinations(settings: Settings, result: TriageResult) -> list[str]:
    """Where the alert would be delivered: the Slack channel, the PagerDuty key's name."""
    where = []
    if "slack" in sink_names(settings):
        from router.integrations.slack.sink import slack_channel

        where.append(f"Slack {slack_channel(settings.slack, result)}")
    if "pagerduty" in sink_names(settings):
        name = result.classification.routing.pagerduty_routing_key
        where.append(f"PagerDuty routing key {name!r}" if name else "PagerDuty default routing key")
    return where or ["the console only (neither Slack nor PagerDuty is configured)"]


def console_format(settings: Settings) -> Literal["text", "json"]:
    """The console sink's format; unset, it follows ``log.format``."""
    return settings.console.format or settings.log.format


@dataclass
class Runtime:
    """What one process opens to take work: the store, the pipeline, its workers."""

    store: Store
    providers: Mapping[str, Provider]
    pipeline: Pipeline
    metrics: Metrics
    workers: Workers
    retriager: Retriager

    async def start(self) -> None:
        self.workers.start()
        await self.retriager.start()

    def wake(self) -> None:
        """New work may be stored (the doorbell rang): claim now, not at the next poll."""
        self.workers.wake()
        self.retriager.wake()

    async def close(self, grace_seconds: float) -> None:
        """Finish or give back work within ``grace_seconds``, then close everything."""
        await self.retriager.close(grace_seconds)
        await self.workers.stop()
        await close_sinks(self.pipeline.sinks)
        await asyncio.gather(*(p.close() for p in self.providers.values()))
        await self.store.close()


async def open_runtime(settings: Settings, components: Components) -> Runtime:
    try:
        store = await open_store(settings.database_url)
    except StoreUnavailable as exc:
        raise ConfigError("database", None, f"cannot open the state store: {exc}") from None
    providers = build_providers(settings, secret_values(settings))
    sinks = [*build_sinks(settings, store), *retriage_sinks(settings)]
    metrics = Metrics(sinks=sorted({sink.name for sink in sinks}))
    history = History(store.db, days=settings.history.days)
    pipeline = build_pipeline(settings, components, sinks, providers, history)
    workers = Workers(store, pipeline, metrics, settings.worker)
    retriager = Retriager.for_service(
        settings, store, pipeline, on_queued=workers.wake, metrics=metrics
    )
    return Runtime(store, providers, pipeline, metrics, workers, retriager)


def _start_up(settings: Settings, *, warn: bool = True) -> Components:
    """Logging, then the components; ``warn`` logs unknown variables and ``check``'s problems."""
    configure_logging(
        settings.log.format, settings.log.level, redactor=Redactor(secret_values(settings))
    )
    components = load_components(settings)
    if warn:
        for warning in unknown_variables():
            log.warning(warning)
        for problem in find_problems(settings, components.library, components.rules):
            log.warning("%s (runbook-router check lists every problem)", problem)
    return components


async def serve(settings: Settings, *, host: str, port: int, worker_processes: int = 0) -> None:
    """Run the web service until SIGINT/SIGTERM, then shut down cleanly.

    With ``worker_processes`` triage and delivery run in that many ``work`` processes;
    with 0 they run in this process, beside the web app.
    """
    runtime = await open_runtime(settings, _start_up(settings))
    children = WorkerProcesses(worker_command(settings.config_file), worker_processes)
    in_process = worker_processes == 0
    # Workers in this process are woken directly; worker processes through the doorbell.
    bell = None if in_process else doorbell(runtime.store.db)
    if bell is not None:  # re-triage requests, too, are taken up by the worker processes
        runtime.retriager.on_queued = bell.ring
    app = create_app(
        settings,
        runtime.store,
        runtime.metrics,
        readiness=lambda: _readiness(runtime.workers if in_process else children),
        on_ingest=bell.ring if bell is not None else runtime.workers.wake,
        retriager=runtime.retriager,
    )
    server = _Server(
        uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="off")
    )
    log.info(
        "runbook-router listening on http://%s:%d (store: %s, sinks: %s, worker processes: %s)",
        host,
        port,
        runtime.store.backend,
        ", ".join(s.name for s in runtime.pipeline.sinks) or "none",
        worker_processes or "none, in-process",
    )
    grace = settings.worker.shutdown_grace_seconds
    heap.settle()
    if in_process:
        await runtime.start()
    else:
        children.start()
    pruning = asyncio.create_task(_prune(runtime.store, settings.history.retention_days))
    try:
        await server.serve()
    finally:
        app.state.accepting = False
        pruning.cancel()
        await children.stop(grace + STOP_MARGIN_SECONDS)
        if bell is not None:
            await bell.close()
        await runtime.close(grace)
        log.info("runbook-router stopped")


async def work(settings: Settings, *, supervisor: int | None = None) -> None:
    """Run triage and delivery (no web app) until SIGINT/SIGTERM, then shut down cleanly.

    ``supervisor``: the web process that started this one (``serve``); it has already
    logged the start-up warnings, and this process dies with it.
    """
    if supervisor is not None:
        become_supervised(supervisor)  # before start-up, which takes seconds
    stopping = asyncio.Event()  # a signal during start-up stops it cleanly too
    loop = asyncio.get_running_loop()
    for sig in _SIGNALS:
        loop.add_signal_handler(sig, stopping.set)
    components = _start_up(settings, warn=supervisor is None)
    runtime = await open_runtime(settings, components)
    # Listening before the first claim: work stored in between is claimed by it.
    listener = await listen(runtime.store.db, runtime.wake)
    heap.settle()
    await runtime.start()
    log.info("worker process %d taking work (niceness %d)", os.getpid(), os.nice(0))
    try:
        await stopping.wait()
    finally:
        await listener.close()
        await runtime.close(settings.worker.shutdown_grace_seconds)
        log.info("worker process %d stopped", os.getpid())


async def _prune(store: Store, max_age_days: float, every_seconds: float = 3600) -> None:
    """Retention: every hour, delete finished alert states older than ``max_age_days``."""
    while True:
        try:
            while await store.prune(max_age_days):
                await asyncio.sleep(0)  # batch after batch, letting the service breathe
        except StoreUnavailable as exc:
            log.warning("retention: cannot prune old alert states: %s", exc)
        await asyncio.sleep(every_seconds)


class _Server(uvicorn.Server):
    """uvicorn's server, except that it does not re-raise SIGTERM/SIGINT once it has stopped:
    the workers still have to finish or give back their jobs after the HTTP side is down."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOP_MARGIN_SECONDS = 5.0  # a worker process past its grace period gets this long to exit


async def _readiness(workers: Workers | WorkerProcesses) -> dict[str, bool]:
    return {"workers": workers.running}
