"""The endpoint as a person first meets it: http:// typed for https://, a browser
that does not trust the certificate yet, and the log ``gwvault serve`` writes."""

from __future__ import annotations

import http.client
import logging
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from tests.service_fixtures import require_service
from tests.web.api_helpers import new_entry_link, new_token
from tests.web.served_process import CLIENT_TLS, gwvault_serve
from tests.web_fixtures import LiveServer, WebVault
from web.server.first_contact import SUMMARY_SECONDS, HandshakeFailures


def plain_http(port: int, request: bytes) -> bytes:
    """What a plain-HTTP client gets back from the HTTPS port (all of it, until close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    return answer


def test_plain_http_gets_a_400_that_names_the_https_address(live_server: LiveServer) -> None:
    answer = plain_http(live_server.port, b"GET /signin?next=x HTTP/1.1\r\nHost: evil\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"content-type: text/plain; charset=utf-8" in head and b"connection: close" in head
    assert body == f"This port speaks HTTPS only: use {live_server.url}/\n".encode()
    assert b"evil" not in answer  # the address reached, never the Host header


def test_curl_on_http_shows_the_answer_not_a_reset(live_server: LiveServer) -> None:
    curl = shutil.which("curl")
    if curl is None:
        require_service("curl is not installed")
    done = subprocess.run(
        [curl, "-sS", "-i", f"http://127.0.0.1:{live_server.port}/"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("HTTP/1.1 400") and f"use {live_server.url}/" in done.stdout


def test_https_is_served_as_before_beside_plain_http(live_server: LiveServer) -> None:
    for _ in range(3):
        assert plain_http(live_server.port, b"HEAD / HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 400")
        connection = http.client.HTTPSConnection(
            "127.0.0.1", live_server.port, context=CLIENT_TLS, timeout=10
        )
        connection.request("GET", "/healthz")
        assert connection.getresponse().status == 200
        connection.close()


def test_a_silent_or_garbage_client_is_closed_without_an_answer(live_server: LiveServer) -> None:
    for opening in (b"\x00\x01garbage", b""):
        with socket.create_connection(("127.0.0.1", live_server.port), timeout=10) as sock:
            if opening:
                sock.sendall(opening)
            else:
                sock.shutdown(socket.SHUT_WR)
            try:
                answer = sock.recv(4096)
            except ConnectionResetError:
                answer = b""  # a refused handshake may reset
            assert not answer.startswith(b"HTTP/")


def _untrusting_handshake(port: int) -> None:
    """A client with the system's CAs, as a browser before its warning is accepted."""
    context = ssl.create_default_context()
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(raw, server_hostname="localhost")


def test_untrusted_certificate_handshakes_are_summarized_not_logged_each(
    live_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="gwvault.server")
    for _ in range(6):
        _untrusting_handshake(live_server.port)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        debug = [r for r in caplog.records if r.levelno == logging.DEBUG and "TLS" in r.message]
        if len(debug) >= 6:
            break
        time.sleep(0.05)
    assert len(debug) == 6 and all("does not trust the certificate" in r.message for r in debug)
    shown = [r.message for r in caplog.records if r.levelno >= logging.INFO]
    assert len(shown) == 1 and shown[0].startswith("TLS handshakes that failed: 1 ")


def test_the_summary_counts_each_kind_once_per_period(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gwvault.server")
    now = [0.0]
    failures = HandshakeFailures(clock=lambda: now[0])
    failures.record("192.0.2.1", ConnectionResetError())
    for _ in range(4):
        failures.record("192.0.2.1", TimeoutError())
    now[0] = SUMMARY_SECONDS
    failures.record("192.0.2.1", ConnectionResetError())
    assert [r.getMessage() for r in caplog.records] == [
        "TLS handshakes that failed: 1 closed by the client",
        "TLS handshakes that failed in the last 10 min: 1 closed by the client;"
        " 4 no handshake in time",
    ]


def test_gwvault_serve_logs_each_request_once_and_no_secret(
    web_vault: WebVault, tmp_path: Path
) -> None:
    secret = new_entry_link(web_vault, "hr-db")
    token = new_token(web_vault, "admin")
    log_file = tmp_path / "serve.log"
    with gwvault_serve(web_vault.data_dir, log_file=log_file) as (_, port):
        for path, headers in (
            (f"/entry/{secret}", {}),
            (f"/api/v1/entry/{secret}/certificate.json", {}),
            (f"/api/v1/status?token={token}", {"Authorization": f"Bearer {token}"}),
            (f"/{secret}", {}),
        ):
            connection = http.client.HTTPSConnection("127.0.0.1", port, context=CLIENT_TLS)
            connection.request("GET", path, headers=headers)
            connection.getresponse().read()
            connection.close()
        plain_http(port, f"GET /entry/{secret} HTTP/1.1\r\n\r\n".encode())
        _untrusting_handshake(port)
        deadline = time.monotonic() + 10
        while log_file.read_text().count("\n") < 7 and time.monotonic() < deadline:
            time.sleep(0.1)
    log = log_file.read_text()
    requests = [line for line in log.splitlines() if line.startswith("request ")]
    assert [line.split()[2] for line in requests] == [
        "path=/entry/<secret>",
        "path=/api/v1/entry/<secret>/certificate.json",
        "path=/api/v1/status",
        "path=(no-route)/<long>",
    ]
    assert all(" status=" in line and " ms=" in line and " id=" in line for line in requests)
    assert "plain-http from=127.0.0.1 status=400" in log
    assert log.count("TLS handshakes that failed") == 1
    assert secret not in log and token not in log
