"""What every diagnostics provider shares: the check it is asked to run, and what it returns.

A playbook (``playbooks/*.yaml``) is a list of checks. Each check names a
provider (``prometheus``, ``kubernetes``, ``postgres``, ``http``), one of the
provider's check kinds, and parameters already rendered from the alert's labels.
A provider answers with findings for people and *facts* for the verdict rules:
plain JSON-like values (numbers, strings, lists, dicts) published under the
check's ``id``, so a rule can say ``pods.oom_killed`` or ``connections.used_ratio > 0.9``.

Providers are read-only, always: they only ever GET, SELECT or query.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx

from router.alerts import Alert
from router.triage import Classification, Finding


@dataclass(frozen=True)
class Check:
    """One step of a playbook, with its parameters rendered for one alert."""

    id: str
    provider: str
    kind: str
    title: str
    params: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None


@dataclass(frozen=True)
class AlertContext:
    """What a provider may know about the alert it diagnoses."""

    alert: Alert
    classification: Classification
    now: datetime
    deadline: float  # time.monotonic() value by which every check must have answered

    @property
    def labels(self) -> dict[str, str]:
        return self.alert.labels

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


@dataclass
class CheckOutcome:
    """Findings for people, facts for the verdict rules, and the names of the alert's objects
    the check found out (``{"deployment": "api"}``), which fill the runbook's commands."""

    findings: list[Finding] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)


class ProviderError(Exception):
    """A provider could not answer (down, unauthorised, misconfigured); the text is shown as is.

    It must never contain a secret: providers raise it with redacted text.
    """


class ProviderSettingsError(ValueError):
    """A provider's settings cannot work: a missing kubeconfig, an unreadable CA file, a bad DSN.

    ``loc`` is where the setting lives (``("diagnostics", "kubernetes", "kubeconfig")``), so
    ``check`` can name its file and line. The text never contains a secret.
    """

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


def tls_failure(exc: BaseException) -> str | None:
    """What went wrong with TLS, when that is why a connection failed; else None.

    An untrusted certificate is not "connection refused": it says so, and what to set.
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = cause.verify_message or cause.reason or "certificate verify failed"
            return f"TLS verification failed ({detail}): trust its CA with ca_file"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error ({cause.reason or 'handshake failed'})"
        cause = cause.__cause__ or cause.__context__
    return None


def http_failure(exc: httpx.HTTPError) -> str:
    """Why an HTTP request of a provider got no answer, as a person reads it."""
    if (tls := tls_failure(exc)) is not None:
        return tls
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or host unreachable"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server closed the connection without an answer"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "not an http(s) URL"
    return type(exc).__name__


def seconds(value: float) -> str:
    """A duration without trailing zeros: ``2.50`` → ``2.5``, ``3.00`` → ``3``."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


class Provider(Protocol):
    """A source of evidence: Prometheus, the Kubernetes API, PostgreSQL, HTTP probes."""

    name: str
    kinds: frozenset[str]  # the check kinds it runs, for validating playbooks

    async def run(self, check: Check, context: AlertContext) -> CheckOutcome:
        """Run one check; raise ProviderError for an answer that is an error."""

    async def close(self) -> None:
        """Release connections and clients."""
