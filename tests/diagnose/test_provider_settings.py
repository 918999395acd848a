"""Provider errors that say what is wrong: TLS failures, and settings that cannot work.

A TLS failure is reported as one, not as "connection refused". A kubeconfig that does
not exist, an unreadable CA file or a malformed DSN is a ``check`` error at the file and
line of the setting, and ``triage`` prints what is wrong instead of a traceback.
"""

from __future__ import annotations

import json
import os
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme
import yaml

from router.alerts import Alert
from router.cli import main
from router.config import KubernetesSettings, PrometheusSettings
from router.diagnose.base import AlertContext, Check, ProviderError
from router.diagnose.kubernetes import KubernetesProvider
from router.diagnose.prometheus import PrometheusProvider
from router.triage import Classification
from tests import factories

DSN_PASSWORD = "pg-pass-4f8a9b"
EMPTY_VECTOR = {"status": "success", "data": {"resultType": "vector", "result": []}}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_server(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An HTTPS server on loopback whose certificate only ``ca`` trusts; it answers like Prometheus."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(EMPTY_VECTOR).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            """A client refusing the certificate is what these tests do: no traceback."""

    server = Server(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    # the handshake happens in each request's thread, so a slow client holds no other
    server.socket = context.wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def alert_context() -> AlertContext:
    alert = Alert(status="firing", labels={"alertname": "T"}, startsAt="2026-11-22T03:00:00Z")
    return AlertContext(alert, Classification(), datetime.now(UTC), time.monotonic() + 5)


QUERY = Check("q", "prometheus", "query", "Query", {"query": "up"})


async def test_an_untrusted_certificate_is_a_tls_failure_not_a_refusal(tls_server: str) -> None:
    provider = PrometheusProvider(PrometheusSettings(url=tls_server))
    try:
        with pytest.raises(ProviderError) as caught:
            await provider.run(QUERY, alert_context())
    finally:
        await provider.close()
    message = str(caught.value)
    assert message.startswith("Prometheus: TLS verification failed (")
    assert "trust its CA with ca_file" in message and "refused" not in message


async def test_the_ca_file_makes_the_same_server_trusted(
    tls_server: str, ca: trustme.CA, tmp_path: Path
) -> None:
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    provider = PrometheusProvider(PrometheusSettings(url=tls_server, ca_file=tmp_path / "ca.pem"))
    try:
        outcome = await provider.run(QUERY, alert_context())
    finally:
        await provider.close()
    assert outcome.facts["empty"] is True


@pytest.fixture(autouse=True)
def _no_router_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ROUTER_") or name == "KUBECONFIG":
            monkeypatch.delenv(name)


def write_config(tmp_path: Path, text: str) -> Path:
    config = tmp_path / "router.yaml"
    config.write_text(text)
    return config


def line_of(config: Path, needle: str) -> int:
    return next(i for i, line in enumerate(config.read_text().splitlines(), 1) if needle in line)


def broken_config(tmp_path: Path, tls_server: str) -> Path:
    return write_config(
        tmp_path,
        f"prometheus:\n  url: {tls_server}\n  ca_file: missing-ca.pem\n"
        "diagnostics:\n"
        "  kubernetes:\n    kubeconfig: no-such-kubeconfig\n"
        "  postgres:\n    targets:\n"
        "      - name: orders\n"
        f"        dsn: 'postgresql://router:{DSN_PASSWORD}@db:five/orders'\n",
    )


def test_check_names_file_and_line_of_each_provider_setting(
    tmp_path: Path, tls_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = broken_config(tmp_path, tls_server)
    assert main(["check", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert (
        f"error: {config}:{line_of(config, 'ca_file')}: cannot read the CA file "
        f"{tmp_path / 'missing-ca.pem'} (No such file or directory)"
    ) in err
    assert (
        f"error: {config}:{line_of(config, 'kubeconfig:')}: no kubeconfig file at "
        f"{tmp_path / 'no-such-kubeconfig'}"
    ) in err
    assert (
        f"error: {config}:{line_of(config, 'dsn:')}: target orders: the DSN's port is not a number"
    ) in err
    assert DSN_PASSWORD not in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("kubeconfig", "message"),
    [
        ("clusters: [oops", "is not a valid kubeconfig (line 1: expected ',' or ']'"),
        (
            {"clusters": [], "contexts": [], "users": []},
            "has no current-context: set diagnostics.kubernetes.context",
        ),
        (
            {
                "clusters": [
                    {"name": "c", "cluster": {"server": "https://k", "certificate-authority": "x"}}
                ],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "current-context": "c",
            },
            "cluster c: cannot read the CA file x",
        ),
    ],
)
def test_check_reports_a_kubeconfig_that_cannot_work(
    tmp_path: Path, kubeconfig: object, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(kubeconfig if isinstance(kubeconfig, str) else yaml.safe_dump(kubeconfig))
    config = write_config(tmp_path, f"diagnostics:\n  kubernetes:\n    kubeconfig: {path}\n")
    assert main(["check", "--config", str(config)]) == 1
    assert f"{config}:3: {path}" in (err := capsys.readouterr().err) and message in err


def test_triage_says_what_is_wrong_instead_of_a_traceback(
    tmp_path: Path, tls_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = broken_config(tmp_path, tls_server)
    payload = tmp_path / "payload.json"
    payload.write_bytes(
        factories.body(
            factories.alert(
                "PostgresTooManyConnections",
                labels={"namespace": "shop", "deployment": "orders"},
                expr="sum(pg_stat_activity_count) > 90",
            )
        )
    )
    assert main(["triage", str(payload), "--config", str(config), "--json"]) == 0
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    assert "Traceback" not in shown and DSN_PASSWORD not in captured.out, shown[-3000:]
    titles = {f["title"] for f in json.loads(captured.out)["findings"]}
    line = line_of(config, "dsn:")
    assert f"PostgreSQL: {config}:{line}: target orders: the DSN's port is not a number" in titles
    assert any(t.startswith("Prometheus: ") and "cannot read the CA file" in t for t in titles)
    assert any(t.startswith("Kubernetes API: ") and "no kubeconfig file" in t for t in titles)


async def test_the_kubernetes_api_names_a_tls_failure_too(tls_server: str, tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    config = {
        "clusters": [{"name": "c", "cluster": {"server": tls_server}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "kube-token-31337"}}],
        "current-context": "c",
    }
    path.write_text(yaml.safe_dump(config))
    provider = KubernetesProvider.from_settings(KubernetesSettings(kubeconfig=path))
    assert provider is not None
    pods = Check("pods", "kubernetes", "pods", "Pods", {"namespace": "shop", "pod": "api-1"})
    try:
        with pytest.raises(ProviderError) as caught:
            await provider.run(pods, alert_context())
    finally:
        await provider.close()
    assert str(caught.value).startswith("Kubernetes API: TLS verification failed (")
    assert "kube-token-31337" not in str(caught.value)


def test_check_reports_a_context_the_kubeconfig_lacks(
    tmp_path: Path, cluster_kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path,
        f"diagnostics:\n  kubernetes:\n    kubeconfig: {cluster_kubeconfig}\n    context: prod\n",
    )
    assert main(["check", "--config", str(config)]) == 1
    assert (
        f"{config}:4: no context 'prod' in {cluster_kubeconfig} (it has: c)"
        in capsys.readouterr().err
    )


@pytest.fixture
def cluster_kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    config = {
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "current-context": "c",
    }
    path.write_text(yaml.safe_dump(config))
    return path
