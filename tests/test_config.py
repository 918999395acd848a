"""Configuration: YAML file, ROUTER_* overrides, secret files, errors with lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from router.config import (
    BUILTIN_RULES,
    NOT_FROM_ENVIRONMENT,
    Settings,
    load_settings,
    unknown_variables,
)
from router.envvars import variables
from router.yamlfile import ConfigError

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("ROUTER_"):
            monkeypatch.delenv(name)


def test_embedded_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'data' / 'router.db'}"
    assert settings.rules == [BUILTIN_RULES]
    assert settings.console_enabled
    assert not settings.webhook.auth_configured


def test_yaml_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "router.yaml"
    config.parent.mkdir()
    config.write_text("rules: [my-rules]\nrunbooks: [/abs/books]\nconsole: {path: out.log}\n")
    settings = load_settings(config)
    assert settings.rules == [tmp_path / "etc" / "my-rules"]
    assert settings.runbooks == [Path("/abs/books")]
    assert settings.console.path == tmp_path / "etc" / "out.log"


def test_environment_overrides_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "router.yaml"
    config.write_text(
        "slack: {default_channel: '#yaml', bot_token: from-yaml}\nworker: {count: 2}\n"
    )
    monkeypatch.setenv("ROUTER_SLACK_BOT_TOKEN", "xoxb-from-env")
    monkeypatch.setenv("ROUTER_WORKER_COUNT", "7")
    monkeypatch.setenv("ROUTER_DATABASE_URL", "postgresql://u:p@db/router")
    settings = load_settings(config)
    assert settings.slack.bot_token.get_secret_value() == "xoxb-from-env"
    assert settings.slack.default_channel == "#yaml"
    assert settings.worker.count == 7
    assert settings.database_url == "postgresql://u:p@db/router"
    assert not settings.console_enabled


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "router.yaml"
    config.write_text("webhook: {username: am, password: pw}\n")
    monkeypatch.setenv("ROUTER_CONFIG", str(config))
    assert load_settings().webhook.username == "am"


def test_secret_from_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text("s3cret\n")
    monkeypatch.setenv("ROUTER_WEBHOOK_TOKEN_FILE", str(tmp_path / "token"))
    monkeypatch.setenv("ROUTER_PAGERDUTY_ROUTING_KEY_FILE", str(tmp_path / "token"))
    settings = load_settings()
    assert settings.webhook.token.get_secret_value() == "s3cret"
    assert settings.pagerduty.routing_key.get_secret_value() == "s3cret"


def test_unreadable_secret_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTER_WEBHOOK_TOKEN_FILE", "/nonexistent/token")
    with pytest.raises(ConfigError, match="ROUTER_WEBHOOK_TOKEN_FILE"):
        load_settings()


def test_empty_secret_means_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTER_SLACK_BOT_TOKEN", "")
    monkeypatch.setenv("ROUTER_PAGERDUTY_WEBHOOK_SECRETS", "")  # an empty JSON list key
    monkeypatch.setenv("ROUTER_WEBHOOK_TOKEN_FILE", "")
    settings = load_settings()
    assert settings.slack.bot_token is None
    assert settings.pagerduty.webhook_secrets == []
    assert settings.webhook.token is None
    assert settings.console_enabled


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTER_WEBHOOK_TOKEN", "tok-123456")
    assert "tok-123456" not in repr(load_settings())


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("worker:\n  count: 0\n", 2, "worker.count"),
        ("log:\n  format: xml\n", 2, "log.format"),
        ("slack:\n  bot_tokn: x\n", 2, "bot_tokn"),
        ("rules: [a\n", 2, "invalid YAML"),
        ("- a\n- b\n", 1, "mapping"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    config = tmp_path / "router.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert info.value.path == str(config)
    assert info.value.line == line
    assert message in info.value.message


def test_a_key_at_any_depth_is_set_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTER_DIAGNOSTICS_KUBERNETES_ENABLED", "false")
    monkeypatch.setenv("ROUTER_DIAGNOSTICS_POSTGRES_STATEMENT_TIMEOUT_MS", "900")
    monkeypatch.setenv("ROUTER_PROMETHEUS_CA_FILE", "/etc/ssl/ca.pem")  # a key ending in _FILE
    monkeypatch.setenv("ROUTER_PAGERDUTY_FROM", "oncall@example.com")  # an aliased key
    monkeypatch.setenv("ROUTER_PAGERDUTY_WEBHOOK_SECRETS", '["old", "new"]')  # JSON
    monkeypatch.setenv("ROUTER_DIAGNOSTICS_HTTP", '{"timeout_seconds": 2}')  # a section as JSON
    monkeypatch.setenv("ROUTER_DIAGNOSTICS_HTTP_PROBES", '[{"url": "http://x/readyz"}]')
    settings = load_settings()
    assert settings.diagnostics.kubernetes.enabled is False
    assert settings.diagnostics.postgres.statement_timeout_ms == 900
    assert settings.prometheus.ca_file == Path("/etc/ssl/ca.pem")
    assert settings.pagerduty.from_ == "oncall@example.com"
    assert [s.get_secret_value() for s in settings.pagerduty.webhook_secrets] == ["old", "new"]
    assert settings.diagnostics.http.timeout_seconds == 2
    assert [p.url for p in settings.diagnostics.http.probes] == ["http://x/readyz"]


def readme_configuration_keys() -> set[tuple[str, ...]]:
    """Every key of the README's configuration examples (its ```yaml blocks with keys)."""
    text = (REPO / "README.md").read_text()
    keys: set[tuple[str, ...]] = set()

    def walk(value: object, path: tuple[str, ...]) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                keys.add((*path, str(key)))
                if str(key) not in {"routing_keys", "pagerduty_severity"}:
                    walk(inner, (*path, str(key)))

    section = text[text.index("## Configuration") : text.index("## Command line")]
    section += text[text.index("## Diagnostics") : text.index("### Playbooks")]
    for block in re.findall(r"^```yaml\n(.*?)^```", section, re.MULTILINE | re.DOTALL):
        walk(yaml.safe_load(block), ())
    return keys


def test_every_documented_key_has_a_variable_and_every_variable_used_a_key() -> None:
    known = variables(Settings, NOT_FROM_ENVIRONMENT)
    paths = {v.path for v in known.values()}
    documented = readme_configuration_keys()
    assert ("diagnostics", "kubernetes", "timeout_seconds") in documented
    assert documented <= paths, sorted(documented - paths)
    documents = [REPO / "README.md", REPO / "Dockerfile", *(REPO / "deploy").glob("*.yaml")]
    mentioned = {m for d in documents for m in re.findall(r"\bROUTER_[A-Z0-9_]+", d.read_text())}
    mentioned -= {"ROUTER_CONFIG", "ROUTER_TEST_POSTGRES_URL", "ROUTER_DATABSE_URL"}  # a typo shown
    unknown = {m for m in mentioned if m not in known and m.removesuffix("_FILE") not in known}
    assert not unknown


def test_an_unknown_variable_is_a_warning_naming_the_closest_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROUTER_DATABSE_URL", "postgresql://u@db/router")
    monkeypatch.setenv("ROUTER_SLACK_CHANEL", "#ops")
    monkeypatch.setenv("ROUTER_WEBHOK_TOKEN_FILE", "/run/secrets/token")
    monkeypatch.setenv("ROUTER_SLACK_SERVICE_HOST", "10.0.0.7")
    monkeypatch.setenv("ROUTER_SLACK_PORT_443_TCP_ADDR", "10.0.0.7")
    settings = load_settings()  # none of them is fatal
    assert settings.database.url is None
    assert unknown_variables() == [
        "ignoring environment variable ROUTER_DATABSE_URL: did you mean ROUTER_DATABASE_URL?",
        "ignoring environment variable ROUTER_SLACK_CHANEL: "
        "did you mean ROUTER_SLACK_DEFAULT_CHANNEL?",
        "ignoring environment variable ROUTER_SLACK_PORT_443_TCP_ADDR: "
        "a Kubernetes service link (set enableServiceLinks: false on the pod)",
        "ignoring environment variable ROUTER_SLACK_SERVICE_HOST: "
        "a Kubernetes service link (set enableServiceLinks: false on the pod)",
        "ignoring environment variable ROUTER_WEBHOK_TOKEN_FILE: "
        "did you mean ROUTER_WEBHOOK_TOKEN_FILE?",
    ]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ROUTER_WORKER_COUNT", "many", "ROUTER_WORKER_COUNT: worker.count: Input should be"),
        ("ROUTER_SLACK_RATE_PER_SECOND", "-1", "ROUTER_SLACK_RATE_PER_SECOND: slack.rate_per"),
        ("ROUTER_RULES", "[rules", "ROUTER_RULES: not valid JSON"),
        (
            "ROUTER_DIAGNOSTICS_POSTGRES_TARGETS",
            '[{"name": "orders"}]',
            "ROUTER_DIAGNOSTICS_POSTGRES_TARGETS: diagnostics.postgres.targets[0].dsn: Field",
        ),
    ],
)
def test_a_bad_value_from_the_environment_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    config = tmp_path / "router.yaml"
    config.write_text("worker: {poll_seconds: 1}\n")
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert str(info.value).startswith(message)
    assert "router.yaml" not in str(info.value)


def test_the_deployment_turns_off_service_links() -> None:
    deployment = yaml.safe_load((REPO / "deploy" / "deployment.yaml").read_text())
    assert deployment["spec"]["template"]["spec"]["enableServiceLinks"] is False
