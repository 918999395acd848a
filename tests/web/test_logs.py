"""Structured logs and redaction: no secret ever reaches the log output."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest

from router.config import Settings
from router.logs import configure_logging, make_handler
from router.metrics import Metrics
from router.redact import MASK, Redactor, redact, secret_values
from router.store import Store
from router.store.database import Database
from router.web import create_app
from tests.web.webhelpers import LiveServer, asgi_client, basic, make_payload

BEARER = "brr-Zq81xL0pW2mN7vK4"
BASIC_USER = "am-sender"
BASIC_PASSWORD = "bp-Rt5yU8iO1pA3sD6f"
DSN_PASSWORD = "dsn-Gh9jK2lM4nB6vC8x"
SLACK = "xoxb-1111-2222-AbCdEfGhIjKl"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def", "Authorization: Bearer ***"),
        ('{"authorization": "Basic dXNlcjpwYXNz"}', '{"authorization": "Basic ***"}'),
        ("sent Bearer eyJhbGciOi.x.y upstream", "sent Bearer *** upstream"),
        ("creds Basic dXNlcjpwYXNz", "creds Basic ***"),
        ("Basic authentication is configured", "Basic authentication is configured"),
        ("token xoxb-123-456-abcDEF used", "token *** used"),
        ("app token xapp-1-A0-123-abc", "app token ***"),
        ("postgresql://router:hunter2@db:5432/r", "postgresql://router:***@db:5432/r"),
        ("postgresql+asyncpg://u:p%40ss@db/r failed", "postgresql+asyncpg://u:***@db/r failed"),
        ("GET /hook?token=abc123&x=1", "GET /hook?token=***&x=1"),
        ("password=hunter2 user=bob", "password=*** user=bob"),
        ('{"api_key": "k-1", "routing_key": "r-2"}', '{"api_key": "***", "routing_key": "***"}'),
        ("client_secret: s3", "client_secret: ***"),
        ("no secrets here, 5 tokens left", "no secrets here, 5 tokens left"),
        (
            "{'token': SecretStr('****'), 'secret': None}",
            "{'token': SecretStr('****'), 'secret': None}",
        ),
        ('WWW-Authenticate: Bearer realm="r"', 'WWW-Authenticate: Bearer realm="r"'),
    ],
)
def test_patterns(text, expected):
    assert redact(text) == expected


_KEYS = ["token", "Password", "PASSWD", "pwd", "client_secret", "X-Api-Key", "APIKEY",
         "routing-key", "authorization", "dsn"]  # fmt: skip
_SHAPES = ["{k}=v4lue", '"{k}": "v4lue"', "{k}: Bearer abc.def1", "{k} xoxb-1-2 u://a:b@h",
           "\u212a {k}=v4lue", "nothing={k}", "{k}"]  # fmt: skip


@pytest.mark.parametrize("text", [s.format(k=k) for k in _KEYS for s in _SHAPES])
def test_a_pattern_is_skipped_only_where_it_cannot_match(text):
    from router.redact import _PATTERNS

    unguarded = text
    for pattern, replacement in _PATTERNS:
        unguarded = pattern.sub(replacement, unguarded)
    assert redact(text) == unguarded


def test_known_secrets_and_their_escaped_forms():
    secret = 'we"ird\\pass'
    redactor = Redactor([secret])
    assert redactor(f"x {secret} y") == f"x {MASK} y"
    assert secret not in redactor(json.dumps({"v": secret}))
    assert 'we\\"ird' not in redactor(json.dumps({"v": secret}))
    assert "ird" not in redactor(repr({"v": secret}))


def test_redactor_add_and_value():
    redactor = Redactor()
    redactor.add(None)
    redactor.add("")
    redactor.add("s3cr3t-value")
    assert redactor.value({"a": ["x s3cr3t-value"], "n": 3, "password": "plain", "ok": None}) == {
        "a": ["x ***"],
        "n": 3,
        "password": "***",
        "ok": None,
    }


def test_secret_values_walks_settings():
    settings = Settings(
        webhook={"token": BEARER, "username": BASIC_USER, "password": BASIC_PASSWORD},
        database={"url": f"postgresql://router:{DSN_PASSWORD}@db/router"},
        slack={"bot_token": SLACK},
    )
    found = secret_values(settings)
    for secret in (BEARER, BASIC_PASSWORD, DSN_PASSWORD, SLACK):
        assert secret in found
    assert BASIC_USER not in found  # the username is not a secret


def emit(format: str, redactor: Redactor, *args, **kwargs) -> str:
    stream = io.StringIO()
    logger = logging.getLogger(f"test.logs.{format}")
    logger.handlers = [make_handler(format, redactor, stream)]  # type: ignore[arg-type]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        logger.error(*args, **kwargs)
    finally:
        logger.handlers = []
    return stream.getvalue()


def test_json_lines():
    out = emit("json", Redactor(), "hello %s", "world", extra={"receiver": "team-a", "n": 2})
    entry = json.loads(out)
    assert entry["msg"] == "hello world"
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "test.logs.json"
    assert entry["ts"].endswith("Z")
    assert (entry["receiver"], entry["n"]) == ("team-a", 2)


def test_text_line_has_extras():
    out = emit("text", Redactor(), "hello", extra={"receiver": "team a", "n": 2})
    assert " ERROR test.logs.text hello " in out
    assert 'receiver="team a"' in out and "n=2" in out


@pytest.mark.parametrize("format", ["text", "json"])
def test_every_part_of_a_record_is_redacted(format):
    redactor = Redactor(["topsecret-1234"])
    try:
        raise ValueError("connect failed: postgresql://u:topsecret-1234@db/x")
    except ValueError:
        out = emit(
            format,
            redactor,
            "msg %s and %r",
            "topsecret-1234",
            {"k": "topsecret-1234"},
            exc_info=True,
            extra={
                "url": "https://x/?token=abc",
                "nested": {"v": ["topsecret-1234"], "headers": {"password": "plainpw77"}},
                "api_token": "plainvalue99",  # no pattern knows it: its name says it is secret
            },
        )
    assert "topsecret-1234" not in out
    assert "token=abc" not in out
    assert "plainvalue99" not in out and "plainpw77" not in out
    assert "ValueError" in out  # the traceback is kept, only the secret is gone


async def test_no_secret_reaches_the_logs(capture_logs, tmp_path, unused_tcp_port):
    """Configured credentials and DSN, wrong and right tokens, real HTTP: none in any output."""
    dsn = f"postgresql://router:{DSN_PASSWORD}@127.0.0.1:{unused_tcp_port}/router"
    settings = Settings(
        webhook={"token": BEARER, "username": BASIC_USER, "password": BASIC_PASSWORD},
        database={"url": dsn},
        slack={"bot_token": SLACK},
    )
    secrets = (BEARER, BASIC_PASSWORD, DSN_PASSWORD, SLACK, "wrong-" + BEARER)
    outputs = []
    for format in ("text", "json"):
        capture = capture_logs(format, tuple(secret_values(settings)))
        logging.getLogger("test").info("settings %s", settings.model_dump())
        logging.getLogger("test").info("dsn %s slack %s", dsn, SLACK)
        store = Store(Database(dsn, connect_timeout=1))
        app = create_app(settings, store, Metrics())
        try:
            await _drive(app)
        finally:
            await store.close()
        outputs.append(capture.text)
        assert "webhook rejected" in capture.text  # the log is really being captured
        assert "/alertmanager?token=***" in capture.text  # uvicorn's access log, redacted
    for output in outputs:
        for secret in secrets:
            assert secret not in output
    assert all('"msg"' in line for line in outputs[1].splitlines() if line.startswith("{"))


async def _drive(app) -> None:
    payload = make_payload()
    server = LiveServer(app, access_log=True)
    async with server as live, httpx.AsyncClient(base_url=live.url) as client:
        await client.post("/alertmanager", json=payload)
        await client.post(
            "/alertmanager", json=payload, headers={"Authorization": f"Bearer wrong-{BEARER}"}
        )
        await client.post(
            "/alertmanager", json=payload, headers={"Authorization": f"Bearer {BEARER}"}
        )
        await client.post(
            f"/alertmanager?token={BEARER}", json=payload, auth=(BASIC_USER, BASIC_PASSWORD)
        )
    async with asgi_client(app) as client:
        await client.post("/alertmanager", json=payload, auth=(BASIC_USER, "x" + BASIC_PASSWORD))
        await client.get("/readyz")


def test_configure_logging_installs_one_root_handler(capture_logs):
    capture = capture_logs("json")
    root = logging.getLogger()
    assert len(root.handlers) == 1
    assert logging.getLogger("uvicorn.error").propagate
    logging.getLogger("uvicorn.error").warning("from uvicorn")
    assert json.loads(capture.text.splitlines()[-1])["msg"] == "from uvicorn"


def test_configure_logging_returns_handler():
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    try:
        handler = configure_logging("text", "warning", stream=io.StringIO())
        assert root.handlers == [handler]
        assert root.level == logging.WARNING
    finally:
        root.handlers = saved[0]
        root.setLevel(saved[1])


def test_basic_helper_roundtrip():
    assert basic("a", "b") == "Basic YTpi"
