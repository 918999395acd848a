"""What each diagnostics provider is called and which check kinds it runs: said once, here.

The providers (``prometheus``, ``kubernetes``, ``postgres``, ``http_probe``) take their
``name``, ``kinds`` and display title from these entries; playbook validation and the
findings that name a provider read the same table. This module imports no client
library, so validating playbooks never loads lightkube or asyncpg.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProviderInfo:
    name: str  # as a playbook's ``provider:`` names it
    title: str  # as people call it, in findings: "Kubernetes API: 401 Unauthorized"
    kinds: frozenset[str]  # the check kinds it runs


PROMETHEUS = ProviderInfo(
    "prometheus", "Prometheus", frozenset({"query", "range", "alert_expression"})
)
HTTP = ProviderInfo("http", "HTTP probe", frozenset({"probe"}))
KUBERNETES = ProviderInfo(
    "kubernetes", "Kubernetes API", frozenset({"pods", "events", "logs", "rollout", "hpa"})
)
POSTGRES = ProviderInfo(
    "postgres", "PostgreSQL", frozenset({"connections", "long_queries", "locks", "ping"})
)

PROVIDERS: tuple[ProviderInfo, ...] = (PROMETHEUS, HTTP, KUBERNETES, POSTGRES)
# The check kinds each provider runs; playbooks are validated against this table.
KNOWN_KINDS: dict[str, frozenset[str]] = {p.name: p.kinds for p in PROVIDERS}
TITLES: dict[str, str] = {p.name: p.title for p in PROVIDERS}


def provider_title(provider: str) -> str:
    """How people call a provider: ``kubernetes`` → ``Kubernetes API``."""
    return TITLES.get(provider, provider)
