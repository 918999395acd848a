"""Configuration: one YAML file, overridden by ``ROUTER_*`` environment variables.

Precedence, highest first: environment (``ROUTER_SLACK_BOT_TOKEN``), secret files
named by ``*_FILE`` variables (``ROUTER_SLACK_BOT_TOKEN_FILE=/run/secrets/slack``),
the YAML file (``--config`` or ``ROUTER_CONFIG``), then the embedded defaults:
SQLite under ``./data``, the built-in ``rules/`` and ``runbooks/``, the console sink.
Relative paths in the YAML file are relative to the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from router.envvars import Environment, read_environment, unknown_variable_warnings
from router.yamlfile import ConfigError, ConfigErrors, format_loc, load_yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUILTIN_RULES = PROJECT_ROOT / "rules"
BUILTIN_RUNBOOKS = PROJECT_ROOT / "runbooks"
BUILTIN_TEMPLATES = PROJECT_ROOT / "templates"
BUILTIN_PLAYBOOKS = PROJECT_ROOT / "playbooks"

NOT_FROM_ENVIRONMENT = frozenset({"config_file"})  # ROUTER_CONFIG names the file instead

_PATH_KEYS = {
    ("data_dir",),
    ("rules",),
    ("runbooks",),
    ("playbooks",),
    ("templates",),
    ("console", "path"),
    ("prometheus", "ca_file"),
    ("pagerduty", "ca_file"),
    ("diagnostics", "kubernetes", "kubeconfig"),
}


def _empty_is_unset(value: Any) -> Any:
    return None if value == "" else value


# A secret; an empty value (e.g. an empty key in a Kubernetes Secret) means "not configured".
Secret = Annotated[SecretStr | None, BeforeValidator(_empty_is_unset)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookSettings(Section):
    """How Alertmanager authenticates to ``POST /alertmanager``."""

    token: Secret = None
    username: str | None = None
    password: Secret = None
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)

    @property
    def auth_configured(self) -> bool:
        return self.token is not None or self.username is not None


class DatabaseSettings(Section):
    """The state store; empty means SQLite under ``data_dir``."""

    url: Secret = None


class WorkerSettings(Section):
    """Background workers that claim alert jobs and deliveries."""

    count: int = Field(default=4, ge=1, le=64)
    lease_seconds: float = Field(default=15.0, gt=0)  # renewed twice per lease while working
    poll_seconds: float = Field(default=0.5, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)


class ConsoleSettings(Section):
    """The console sink: what would have been posted, when no real sink is set up."""

    enabled: bool | None = None  # None: on when neither Slack nor PagerDuty is configured
    format: Literal["text", "json"] | None = None  # None: as log.format
    path: Path | None = None  # None: standard output


class SlackSettings(Section):
    """Slack: one message per alert (or per Alertmanager group), edited in place."""

    bot_token: Secret = None
    signing_secret: Secret = None
    api_url: str = "https://slack.com/api/"
    default_channel: str = "#alerts"
    channel_template: str | None = None  # e.g. "#alerts-{{ labels.team }}"; a rule's channel wins
    message_per: Literal["alert", "group"] = "alert"
    rate_per_second: float = Field(default=1.0, gt=0)  # per channel, as Slack asks
    burst: int = Field(default=3, ge=1)
    storm_threshold_per_minute: int = Field(default=20, ge=1)  # beyond this, summarise
    timeout_seconds: float = Field(default=10.0, gt=0)


class PagerDutySettings(Section):
    """PagerDuty: Events API v2 for incidents, REST API v2 for incident notes."""

    routing_key: Secret = None  # the default integration key
    routing_keys: dict[str, SecretStr] = Field(default_factory=dict)  # named, for rules
    events_url: str = "https://events.pagerduty.com"
    api_token: Secret = None
    api_url: str = "https://api.pagerduty.com"
    from_: str | None = Field(default=None, alias="from")
    webhook_secret: Secret = None
    # more webhook secrets, accepted as well (while a secret is rotated)
    webhook_secrets: list[SecretStr] = Field(default_factory=list)
    # a webhook's incident note re-runs diagnostics when the last run is older than this
    findings_max_age_seconds: float = Field(default=300.0, ge=0)
    ca_file: Path | None = None  # trust a private CA (e.g. a TLS-intercepting proxy)
    timeout_seconds: float = Field(default=10.0, gt=0)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PrometheusSettings(Section):
    """The Prometheus HTTP API the diagnostics query (and where graphs come from)."""

    url: str | None = None
    token: Secret = None  # Authorization: Bearer
    username: str | None = None
    password: Secret = None
    ca_file: Path | None = None  # a private CA for https:// URLs
    insecure_skip_verify: bool = False
    timeout_seconds: float = Field(default=3.0, gt=0)


class KubernetesSettings(Section):
    """The Kubernetes API, read-only: kubeconfig, or the in-cluster service account."""

    enabled: bool | None = None  # None: on when a kubeconfig or service account is found
    kubeconfig: Path | None = None  # None: $KUBECONFIG, ~/.kube/config, then in-cluster
    context: str | None = None
    timeout_seconds: float = Field(default=3.0, gt=0)
    log_lines: int = Field(default=50, ge=0)
    log_bytes: int = Field(default=16384, ge=0)


class PostgresTarget(Section):
    """A database to inspect for alerts whose labels match ``matchers`` (empty: every alert)."""

    name: str
    matchers: list[str] = Field(default_factory=list)
    dsn: SecretStr


class PostgresSettings(Section):
    targets: list[PostgresTarget] = Field(default_factory=list)
    timeout_seconds: float = Field(default=3.0, gt=0)
    statement_timeout_ms: int = Field(default=2000, gt=0)


class HttpProbe(Section):
    """A health URL (a template over the alert's labels) probed for matching alerts."""

    matchers: list[str] = Field(default_factory=list)
    url: str


class HttpProbeSettings(Section):
    probes: list[HttpProbe] = Field(default_factory=list)
    timeout_seconds: float = Field(default=3.0, gt=0)


class DiagnosticsSettings(Section):
    """Live diagnostics: one deadline per alert, providers run concurrently within it."""

    deadline_seconds: float = Field(default=10.0, gt=0)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    http: HttpProbeSettings = Field(default_factory=HttpProbeSettings)


class HistorySettings(Section):
    """An alert's own history in every message, and how long the store keeps alert states."""

    days: int = Field(default=7, ge=1)  # the window "4th time in 7 days" looks at
    retention_days: float = Field(default=30.0, gt=0)  # finished states older than this go


class LogSettings(Section):
    format: Literal["text", "json"] = "text"
    level: Literal["debug", "info", "warning", "error"] = "info"


class Settings(BaseSettings):
    """Everything the router reads at start-up."""

    model_config = SettingsConfigDict(extra="forbid", populate_by_name=True)

    config_file: Path | None = Field(default=None, exclude=True)
    data_dir: Path = Path("data")
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    rules: list[Path] = Field(default_factory=lambda: [BUILTIN_RULES])
    runbooks: list[Path] = Field(default_factory=lambda: [BUILTIN_RUNBOOKS])
    # Where people read the runbooks, e.g. https://github.com/acme/runbooks/blob/main:
    # links in Slack and PagerDuty become {runbooks_base_url}/{path}#{anchor}.
    runbooks_base_url: str | None = Field(default=None, pattern=r"^https?://")
    templates: Path = BUILTIN_TEMPLATES
    slack: SlackSettings = Field(default_factory=SlackSettings)
    pagerduty: PagerDutySettings = Field(default_factory=PagerDutySettings)
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    playbooks: list[Path] = Field(default_factory=lambda: [BUILTIN_PLAYBOOKS])
    diagnostics: DiagnosticsSettings = Field(default_factory=DiagnosticsSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)

    @property
    def config_dir(self) -> Path:
        """The folder of the YAML file (relative paths in messages start here), or the cwd."""
        return self.config_file.resolve().parent if self.config_file else Path.cwd()

    @property
    def database_url(self) -> str:
        if self.database.url is not None:
            return self.database.url.get_secret_value()
        return f"sqlite+aiosqlite:///{(self.data_dir / 'router.db').resolve()}"

    @property
    def console_enabled(self) -> bool:
        if self.console.enabled is not None:
            return self.console.enabled
        pagerduty = self.pagerduty.routing_key is not None or bool(self.pagerduty.routing_keys)
        return self.slack.bot_token is None and not pagerduty

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _EnvSource(settings_cls), _YamlSource(settings_cls))


class _EnvSource(PydanticBaseSettingsSource):
    """``ROUTER_*`` variables, at any depth (see :mod:`router.envvars`)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return environment().values


def environment() -> Environment:
    """What the process's ``ROUTER_*`` variables set."""
    return read_environment(Settings, os.environ, skip=NOT_FROM_ENVIRONMENT)


def unknown_variables() -> list[str]:
    """A warning per ``ROUTER_*`` variable that sets nothing, naming the closest known one."""
    return unknown_variable_warnings(Settings, os.environ, skip=NOT_FROM_ENVIRONMENT)


class _YamlSource(PydanticBaseSettingsSource):
    """The YAML file named by ``config_file`` (or ``ROUTER_CONFIG``)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = self.current_state.get("config_file") or os.environ.get("ROUTER_CONFIG")
        if not path:
            return {}
        data, _ = load_yaml(Path(path))
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError(path, 1, "the configuration must be a mapping of keys")
        return _resolve_paths(data, Path(path).resolve().parent)


def _resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    def fix(value: Any) -> Any:
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, str) and value and not Path(value).is_absolute():
            return str(base / value)
        return value

    out = dict(data)
    for keys in _PATH_KEYS:
        holder = out
        for key in keys[:-1]:
            nested = holder.get(key)
            if not isinstance(nested, dict):
                break
            holder[key] = holder = dict(nested)
        else:
            if keys[-1] in holder:
                holder[keys[-1]] = fix(holder[keys[-1]])
    return out


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Build :class:`Settings`, turning validation errors into a :class:`ConfigError` with a line."""
    path = Path(config_file) if config_file else _env_config()
    try:
        return Settings(config_file=path, **overrides)
    except ValidationError as exc:
        raise _locate(exc, path) from None


def _env_config() -> Path | None:
    value = os.environ.get("ROUTER_CONFIG")
    return Path(value) if value else None


def _locate(exc: ValidationError, path: Path | None) -> ConfigErrors:
    """Each error blamed on the variable that set the value, else on its line in the file."""
    env = environment()
    locator = load_yaml(path)[1] if path else None
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        variable = env.origin(loc)
        if variable or locator is None:
            where = variable or "configuration"
            problems.append(ConfigError(where, None, f"{format_loc(loc)}: {error['msg']}"))
        else:
            problems.append(locator.problem(error, model=Settings))
    return ConfigErrors(problems)
