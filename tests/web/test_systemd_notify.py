"""sd_notify spoken directly: real datagram sockets, the path and the abstract form,
and every other ``$NOTIFY_SOCKET`` refused without harm; readiness is a real
TLS handshake."""

from __future__ import annotations

import os
import socket
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service_fixtures import HttpAuthServer
from web.server.readiness import handshake_answers, ready_once_answering
from web.server.systemd_notify import NOTIFY_SOCKET, ServiceManager


@pytest.fixture
def manager_end(tmp_path: Path) -> Iterator[socket.socket]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify"))
        sock.settimeout(5)
        yield sock


def test_a_path_socket_receives_one_message_and_the_variable_is_taken_away(
    manager_end: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(NOTIFY_SOCKET, manager_end.getsockname())
    manager = ServiceManager.from_environment()
    assert manager is not None
    assert manager.notify("READY=1", "STATUS=serving") is True
    assert manager_end.recv(4096) == b"READY=1\nSTATUS=serving"
    # Processes serve starts (drivers, tools) must not speak for it.
    assert NOTIFY_SOCKET not in os.environ


def test_the_abstract_namespace_form(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as end:
        end.bind(f"\0gwvault-notify-test-{id(end)}")
        end.settimeout(5)
        monkeypatch.setenv(NOTIFY_SOCKET, "@" + end.getsockname()[1:].decode())
        manager = ServiceManager.from_environment()
        assert manager is not None and manager.notify("STOPPING=1")
        assert end.recv(4096) == b"STOPPING=1"


@pytest.mark.parametrize(
    "value",
    ["", "@", "relative/notify", "vsock:2:1234", "  /with-space-first", "x" * 4096],
)
def test_an_address_that_is_not_af_unix_is_not_used(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(NOTIFY_SOCKET, value)
    assert ServiceManager.from_environment() is None


@pytest.mark.parametrize("where", ["/nonexistent/notify", "/" + "x" * 200, "@gwvault-nobody-here"])
def test_a_manager_that_is_gone_is_logged_not_fatal(
    where: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(NOTIFY_SOCKET, where)
    manager = ServiceManager.from_environment()
    assert manager is not None and manager.notify("READY=1") is False
    assert "could not notify the service manager" in caplog.text


def test_readiness_is_a_completed_tls_handshake(https_auth_server: HttpAuthServer) -> None:
    url = urllib.parse.urlsplit(https_auth_server.base_url)
    assert url.hostname is not None and url.port is not None
    assert handshake_answers((url.hostname, url.port), within_seconds=10)


def test_a_port_that_listens_but_never_answers_tls_is_not_ready() -> None:
    # Bound and listening, like serve's socket before any worker accepts.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        assert not handshake_answers(silent.getsockname()[:2], within_seconds=0.5)


def test_ready_is_sent_only_once_a_handshake_completes(
    manager_end: socket.socket, https_auth_server: HttpAuthServer
) -> None:
    manager = ServiceManager(manager_end.getsockname())
    with socket.create_server(("127.0.0.1", 0)) as silent:  # listening, nobody accepts
        assert not ready_once_answering(manager, silent.getsockname()[:2], "serving", 0.3)
    assert manager_end.recv(4096) == b"STATUS=no worker completed a TLS handshake in 0.3 s"
    url = urllib.parse.urlsplit(https_auth_server.base_url)
    assert url.hostname is not None and url.port is not None
    assert ready_once_answering(manager, (url.hostname, url.port), "serving", 10)
    assert manager_end.recv(4096) == b"READY=1\nSTATUS=serving"
