"""Live diagnostics: providers (one module each), playbooks, and the engine that runs them.

``build_providers(settings)`` makes the providers that are configured;
``Diagnostics`` (``router.diagnose.engine``) is the pipeline's diagnose stage, and
``build_diagnostics(settings, playbooks, library, providers)`` makes it from the settings and
the playbooks that ``configured_playbooks(settings)`` loads once. What each provider is
called and which check kinds it runs is in ``router.diagnose.catalog``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from router.config import Settings
from router.diagnose.base import Provider, ProviderSettingsError
from router.diagnose.catalog import HTTP, KNOWN_KINDS, KUBERNETES, POSTGRES, PROMETHEUS
from router.diagnose.engine import Diagnostics, build_diagnostics, configured_playbooks
from router.diagnose.playbooks import PlaybookSet, load_playbooks
from router.diagnose.preflight import guarded, located
from router.yamlfile import ConfigError

__all__ = [
    "KNOWN_KINDS",
    "Diagnostics",
    "PlaybookSet",
    "build_diagnostics",
    "build_providers",
    "configured_playbooks",
    "load_playbooks",
    "provider_problems",
]


def build_providers(settings: Settings, secrets: Iterable[str] = ()) -> dict[str, Provider]:
    """The providers whose configuration is present; the others are reported as not configured.

    A provider whose settings cannot work (see ``router.diagnose.preflight``) is replaced
    by one whose every check says what is wrong, with the setting's file and line.
    """
    from router.diagnose.http_probe import HttpProbeProvider
    from router.diagnose.kubernetes import KubernetesProvider
    from router.diagnose.postgres import PostgresProvider
    from router.diagnose.prometheus import PrometheusProvider

    secrets = list(secrets)
    diagnostics = settings.diagnostics
    makers: dict[str, Callable[[], Provider | None]] = {}
    if settings.prometheus.url:
        makers[PROMETHEUS.name] = lambda: PrometheusProvider(settings.prometheus, secrets)
    if diagnostics.postgres.targets:
        makers[POSTGRES.name] = lambda: PostgresProvider(diagnostics.postgres, secrets)
    makers[KUBERNETES.name] = lambda: KubernetesProvider.from_settings(
        diagnostics.kubernetes, secrets
    )
    if diagnostics.http.probes:
        makers[HTTP.name] = lambda: HttpProbeProvider(diagnostics.http, secrets)
    providers: dict[str, Provider] = {}
    for name, make in makers.items():
        provider = guarded(settings, name, KNOWN_KINDS[name], make)
        if provider is not None:
            providers[name] = provider
    return providers


def provider_problems(settings: Settings) -> list[ConfigError]:
    """What keeps a configured provider from working, each at its setting's file and line.

    The same validation the providers run when they are built, without opening a client.
    """
    from router.diagnose.kubernetes import load_kubeconfig
    from router.diagnose.postgres import check_dsn
    from router.diagnose.prometheus import tls_verify

    validations: list[Callable[[], object]] = [
        lambda: load_kubeconfig(settings.diagnostics.kubernetes)
    ]
    if settings.prometheus.url:
        validations.append(lambda: tls_verify(settings.prometheus))
    for index, target in enumerate(settings.diagnostics.postgres.targets):
        validations.append(lambda target=target, index=index: check_dsn(target, index))
    problems = []
    for validate in validations:
        try:
            validate()
        except ProviderSettingsError as exc:
            problems.append(located(settings, exc))
    return problems
