"""Re-triage on request: find a stored alert, run the pipeline on it again, deliver the findings.

Requests come from Slack (``/triage <what>``, the "Re-run diagnostics" button) and from
PagerDuty webhooks (their endpoints live in ``router.integrations``). The endpoint resolves
the alert (:func:`resolve`), then :meth:`Retriager.submit` records the request once per idempotency key and answers.
The :class:`Retriager` works through recorded requests in a leased loop
(:mod:`router.leased`), like jobs and deliveries: a request whose process died is taken
over by another replica (or the restarted process) when its lease runs out. It classifies and
diagnoses the alert's latest stored state again (or, for a PagerDuty note, reuses
findings younger than ``max_age``), stores the result and queues what every sink makes
of it (``Sink.retriage``: the ``response_url`` answer, a reply in the alert message's
thread, an incident note) in the durable outbox under keys derived from the request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from router.config import Settings, WorkerSettings
from router.delivery import Delivery
from router.leased import LeasedLoop, LoopOptions
from router.metrics import Metrics
from router.pipeline import Pipeline
from router.retriage_request import RetriageRequest as Request
from router.store import AlertSummary, Recorded, Store, StoredState
from router.store.database import Clock
from router.store.lookup import Lookup
from router.triage import TriageResult

log = logging.getLogger("router.retriage")

_HEX = re.compile(r"[0-9a-f]{4,64}")
_NUMBER = re.compile(r"#?([0-9]{1,12})")
_CANDIDATES = 11

JSON = dict[str, Any]


# -- which alert ---------------------------------------------------------------------


@dataclass(frozen=True)
class Resolved:
    """The alert ``<what>`` names (``alert``), or why there is none (``problem``)."""

    alert: AlertSummary | None
    via: str = ""
    others: list[AlertSummary] = field(default_factory=list)
    problem: str | None = None


async def resolve(lookup: Lookup, what: str) -> Resolved:
    """A fingerprint (or unique prefix), an alert name, a PagerDuty incident number or id."""
    what = what.strip()
    exact = await lookup.by_fingerprint(what)
    if exact is not None:
        return Resolved(exact, "fingerprint")
    number = _NUMBER.fullmatch(what)
    if number is not None:
        found = await _incident(lookup, await lookup.by_incident_number(int(number.group(1))))
        if found is not None or what.startswith("#"):
            return found or Resolved(None, problem=f"No alert of ours has incident #{number[1]}.")
    if _HEX.fullmatch(what.lower()):
        matches = await lookup.by_prefix(what.lower(), limit=_CANDIDATES)
        if len(matches) == 1:
            return Resolved(matches[0], "fingerprint prefix")
        if matches:
            problem = f"`{what}` is the start of {_count(matches)} fingerprints; give more of it."
            return Resolved(None, others=matches, problem=problem)
    named = await lookup.by_name(what, limit=_CANDIDATES)
    if named:
        return Resolved(named[0], "alert name", others=named[1:])
    found = await _incident(lookup, await lookup.by_incident_id(what.upper()))
    return found or Resolved(None, problem=f"No alert matches `{what}`.")


async def _incident(lookup: Lookup, fingerprint: str | None) -> Resolved | None:
    alert = await lookup.by_fingerprint(fingerprint) if fingerprint else None
    return Resolved(alert, "PagerDuty incident") if alert is not None else None


def _count(matches: list[AlertSummary]) -> str:
    return f"{len(matches) - 1}+" if len(matches) >= _CANDIDATES else str(len(matches))


# -- the request and its run ---------------------------------------------------------


class Retriager:
    """Works through recorded re-triage requests; finishes or gives them back on close."""

    name = "re-triage requests"

    def __init__(
        self,
        store: Store,
        pipeline: Pipeline,
        *,
        on_queued: Any = None,
        worker: WorkerSettings | None = None,
        clock: Clock = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        """``worker``: the ``worker:`` settings; as many requests at once as job loops.
        ``on_queued`` is called when deliveries were queued for the workers, and for every
        request when this process does not work on requests itself (its worker processes do:
        ``serve`` rings their doorbell)."""
        self.store, self.pipeline, self.clock = store, pipeline, clock
        self.metrics = metrics or Metrics()
        self.on_queued = on_queued
        self.owner = f"{socket.gethostname()}:{os.getpid()}/retriage"
        w = worker or WorkerSettings()
        self.options = LoopOptions(w.count, w.lease_seconds, w.poll_seconds)
        self._loop: LeasedLoop[Recorded, None] | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def for_service(
        cls,
        settings: Settings,
        store: Store,
        pipeline: Pipeline,
        *,
        on_queued: Any = None,
        metrics: Metrics | None = None,
    ) -> Retriager:
        return cls(
            store,
            pipeline,
            on_queued=on_queued,
            worker=settings.worker,
            metrics=metrics,
        )

    @property
    def busy(self) -> int:
        """Requests being worked on by this process."""
        return len(self._loop.running) if self._loop is not None else 0

    async def start(self) -> None:
        """Start working through requests, including those a stopped process left."""
        self._loop = LeasedLoop(self, self.owner, self.options, asyncio.Event())
        self._task = asyncio.create_task(self._loop(), name="router-retriage")

    # -- the leased work (router.leased.Work) -----------------------------------------

    async def claim(self, owner: str, limit: int, lease_seconds: float) -> list[Recorded]:
        return await self.store.retriages.claim(owner, limit, lease_seconds)

    async def record(self, owner: str, finished: Sequence[tuple[Recorded, None]]) -> None:
        """Nothing to do: a request records its own outcome with its deliveries."""

    async def renew(self, owner: str, items: Sequence[Recorded], lease_seconds: float) -> None:
        await self.store.retriages.renew(owner, items, lease_seconds)

    async def release(self, owner: str, items: Sequence[Recorded]) -> None:
        await self.store.retriages.release(owner, items)

    async def submit(
        self, request: Request, alert: AlertSummary, first: Sequence[Delivery] = ()
    ) -> bool:
        """Record the request (False: seen before) and start its work; ``first`` goes out
        at once (an acknowledgement for whoever asked)."""
        queued = list(first)
        recorded = await self.store.retriages.record(
            request.key,
            source=request.source,
            fingerprint=alert.fingerprint,
            event_id=alert.event_id,
            request=asdict(request),
            deliveries=queued,
        )
        if recorded is None:
            self._count(request, "duplicate")
            return False
        if self._loop is None:  # requests are worked on in other processes: wake them
            self._wake()
            return True
        if queued:
            self._wake()
        self._loop.wake()
        return True

    def wake(self) -> None:
        """Requests may be waiting: claim them now instead of at the next poll."""
        if self._loop is not None:
            self._loop.wake()

    async def close(self, grace: float) -> None:
        """Let running requests finish within ``grace`` seconds; give back the rest."""
        if self._loop is None or self._task is None:
            return
        self._loop.stopping.set()
        self._loop.wake()
        _, pending = await asyncio.wait({self._task}, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._loop = self._task = None

    def _count(self, request: Request, outcome: str) -> None:
        self.metrics.retriages.labels(source=request.source, outcome=outcome).inc()

    def _wake(self) -> None:
        if self.on_queued is not None:
            self.on_queued()

    async def run(self, recorded: Recorded) -> None:
        """Work on one request; a failure is recorded and told, never raised."""
        request = Request.from_json(recorded.request)
        try:
            await self._rerun(recorded, request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("re-triage %s failed", recorded.key)
            shown = "an internal error (the router's log has the details)"
            await self._fail(recorded, request, f"{type(exc).__name__}: {exc}", shown)

    async def _rerun(self, recorded: Recorded, request: Request) -> None:
        """Triage the alert's latest state again (or reuse fresh findings), then deliver."""
        state = await self.store.lookup.latest_state(recorded.fingerprint)
        if state is None:
            await self._fail(recorded, request, "the alert is no longer stored")
            return
        reused = self._fresh(state, request)
        if reused is not None and request.note:
            assert state.last_run_at is not None
            if await self.store.retriages.note_queued_since(state.event_id, state.last_run_at):
                await self.store.retriages.finish(
                    recorded, result_json=None, deliveries=[], outcome="findings already noted"
                )
                self._count(request, "already_noted")
                return
        result = reused or await self.pipeline.triage(TriageResult.of(state))
        deliveries = await self._deliveries(result, request, rerun=reused is None)
        await self.store.retriages.finish(
            recorded,
            result_json=None if reused else result.model_dump_json(),
            deliveries=deliveries,
            outcome=("reused findings" if reused else "diagnostics re-run")
            + f", {len(deliveries)} deliveries",
        )
        self._count(request, "reused" if reused else "rerun")
        log.info(
            "re-triaged %s for %s",
            state.alert.alertname,
            request.requested_by,
            extra={"fingerprint": recorded.fingerprint, "key": request.key},
        )
        self._wake()

    def _fresh(self, state: StoredState, request: Request) -> TriageResult | None:
        if request.max_age is None or state.result_json is None or state.last_run_at is None:
            return None
        if self.clock() - state.last_run_at > request.max_age:
            return None
        return TriageResult.model_validate_json(state.result_json)

    async def _fail(
        self, recorded: Recorded, request: Request, reason: str, shown: str | None = None
    ) -> None:
        """Record the failure; whoever asked is told (``shown``, else ``reason``)."""
        self._count(request, "failed")
        deliveries = [
            d
            for sink in self.pipeline.sinks
            for d in sink.retriage_failed(request, shown or reason)
        ]
        try:
            await self.store.retriages.finish(
                recorded, result_json=None, deliveries=deliveries, outcome=reason, state="failed"
            )
        except Exception as exc:
            log.warning("cannot record the failed re-triage %s: %s", recorded.key, exc)
            return
        self._wake()

    # -- deliveries ------------------------------------------------------------------

    async def _deliveries(
        self, result: TriageResult, request: Request, *, rerun: bool
    ) -> list[Delivery]:
        """Every sink's deliveries for the re-run (an answer, thread replies, a note)."""
        out: list[Delivery] = []
        for sink in self.pipeline.sinks:
            out += await sink.retriage(result, request, rerun=rerun)
        return out
