"""Live diagnostics: providers (one module each), playbooks, and the engine that runs them.

``build_providers(settings)`` makes the providers that are configured;
``Diagnostics`` (``router.diagnose.engine``) is the pipeline's diagnose stage, and
``build_diagnostics(settings, library, providers)`` makes it from the settings.
"""

from __future__ import annotations

from collections.abc import Iterable

from router.config import Settings
from router.diagnose.base import Provider
from router.diagnose.engine import Diagnostics, build_diagnostics
from router.diagnose.playbooks import KNOWN_KINDS, PlaybookSet, load_playbooks

__all__ = [
    "KNOWN_KINDS",
    "Diagnostics",
    "PlaybookSet",
    "build_diagnostics",
    "build_providers",
    "load_playbooks",
]


def build_providers(settings: Settings, secrets: Iterable[str] = ()) -> dict[str, Provider]:
    """The providers whose configuration is present; the others are reported as not configured."""
    from router.diagnose.http_probe import HttpProbeProvider
    from router.diagnose.kubernetes import KubernetesProvider
    from router.diagnose.postgres import PostgresProvider
    from router.diagnose.prometheus import PrometheusProvider

    secrets = list(secrets)
    diagnostics = settings.diagnostics
    providers: dict[str, Provider] = {}
    if settings.prometheus.url:
        providers["prometheus"] = PrometheusProvider(settings.prometheus, secrets)
    if diagnostics.postgres.targets:
        providers["postgres"] = PostgresProvider(diagnostics.postgres, secrets)
    kubernetes = KubernetesProvider.from_settings(diagnostics.kubernetes, secrets)
    if kubernetes is not None:
        providers["kubernetes"] = kubernetes
    if diagnostics.http.probes:
        providers["http"] = HttpProbeProvider(diagnostics.http, secrets)
    return providers
