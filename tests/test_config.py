"""Configuration: YAML file, ROUTER_* overrides, secret files, errors with lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.config import BUILTIN_RULES, load_settings
from router.yamlfile import ConfigError


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
    settings = load_settings()
    assert settings.slack.bot_token is None
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
