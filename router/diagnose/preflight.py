"""Provider settings that cannot work, found before any alert arrives.

A kubeconfig that does not exist, a CA file that cannot be read, a DSN asyncpg cannot
use: ``check`` reports each with the file and line of the setting; ``serve`` and
``triage`` still start, and every check of that provider says what is wrong instead
of a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from router.config import Settings
from router.diagnose.base import (
    AlertContext,
    Check,
    CheckOutcome,
    ProviderError,
    ProviderSettingsError,
)
from router.diagnose.catalog import provider_title
from router.yamlfile import ConfigError, load_yaml


class MisconfiguredProvider:
    """Stands in for a provider whose settings cannot work: every check says why."""

    def __init__(self, name: str, kinds: frozenset[str], problem: ConfigError) -> None:
        self.name = name
        self.kinds = kinds
        self.problem = problem

    async def run(self, check: Check, context: AlertContext) -> CheckOutcome:
        raise ProviderError(f"{provider_title(self.name)}: {self.problem}")

    async def close(self) -> None:
        """Nothing was opened."""


def located(settings: Settings, error: ProviderSettingsError) -> ConfigError:
    """The error at the file and line of its setting, or "environment" when no file sets it."""
    path = settings.config_file
    if path is not None and Path(path).is_file():
        data, locator = load_yaml(Path(path))
        if _has(data, error.loc):
            return locator.error(error.loc, error.message)
    return ConfigError("environment", None, error.message)


def guarded(settings: Settings, name: str, kinds: frozenset[str], make: Callable[[], Any]) -> Any:
    """``make()``, or a :class:`MisconfiguredProvider` saying why it cannot work."""
    try:
        return make()
    except ProviderSettingsError as exc:
        return MisconfiguredProvider(name, kinds, located(settings, exc))


def _has(data: Any, loc: tuple[str | int, ...]) -> bool:
    for key in loc:
        if (isinstance(data, dict) and key in data) or (
            isinstance(data, list) and isinstance(key, int) and key < len(data)
        ):
            data = data[key]
        else:
            return False
    return True
