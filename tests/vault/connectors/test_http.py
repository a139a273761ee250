"""HTTP connection tests against a local server that checks Basic and Bearer auth."""

from __future__ import annotations

import pytest

from agent_keys.secret import Secret
from tests.service_fixtures import HttpAuthServer, free_tcp_port
from tests.vault.connectors.results import assert_presentable
from vault.connectors import dispatch, http
from vault.connectors.connection import ConnectionCredential, ConnectionTestResult
from vault.format.data_source import DataSource

ANONYMOUS = ConnectionCredential("anonymous", None, None)


def _get(
    server: str, credential: ConnectionCredential, timeout: float = 5.0
) -> ConnectionTestResult:
    return dispatch.test_connection(DataSource("http", server), credential, timeout)


def _basic(user: str, password: str) -> ConnectionCredential:
    return ConnectionCredential("basic", user, Secret.from_text(password))


def _key(key: str) -> ConnectionCredential:
    return ConnectionCredential("key", None, Secret.from_text(key))


def test_basic_right_password(http_auth_server: HttpAuthServer) -> None:
    site = http_auth_server
    result = _get(f"{site.base_url}/basic", _basic(site.user, site.password))
    assert result.ok, result.message
    assert result.message == f"ok: HTTP 200 OK from {site.base_url.removeprefix('http://')}"
    assert_presentable(result, site.password)


def test_basic_wrong_password(http_auth_server: HttpAuthServer, canary: str) -> None:
    site = http_auth_server
    result = _get(f"{site.base_url}/basic", _basic(site.user, canary))
    assert result == ConnectionTestResult(False, "authentication failed (HTTP 401)")


def test_basic_without_credentials(http_auth_server: HttpAuthServer) -> None:
    result = _get(f"{http_auth_server.base_url}/basic", ANONYMOUS)
    assert result == ConnectionTestResult(False, "authentication failed (HTTP 401)")


def test_bearer_right_key(http_auth_server: HttpAuthServer) -> None:
    site = http_auth_server
    result = _get(f"{site.base_url}/bearer", _key(site.key))
    assert result.ok, result.message
    assert_presentable(result, site.key)


def test_bearer_wrong_key(http_auth_server: HttpAuthServer, canary: str) -> None:
    result = _get(f"{http_auth_server.base_url}/bearer", _key(canary))
    assert result == ConnectionTestResult(False, "authentication failed (HTTP 401)")


def test_redirect_is_reported_not_followed(http_auth_server: HttpAuthServer) -> None:
    site = http_auth_server
    result = _get(f"{site.base_url}/redirect", _basic(site.user, site.password))
    assert result.ok
    assert result.message.startswith("ok: HTTP 302 from 127.0.0.1:")
    assert result.message.endswith("redirects to localhost (not followed)")
    assert "/next" not in site.paths_seen


def test_server_error_fails_with_status(http_auth_server: HttpAuthServer) -> None:
    result = _get(f"{http_auth_server.base_url}/error", ANONYMOUS)
    assert not result.ok
    assert result.message.startswith("failed: HTTP 500 ")


def test_unreachable_port_is_a_result_not_an_exception(canary: str) -> None:
    result = _get(f"http://127.0.0.1:{free_tcp_port()}/", _key(canary))
    assert not result.ok
    assert "Connection refused" in result.message
    assert_presentable(result, canary)


def test_tls_to_a_plain_http_server_fails(http_auth_server: HttpAuthServer, canary: str) -> None:
    port = http_auth_server.base_url.rsplit(":", 1)[1]
    result = _get(f"127.0.0.1:{port}", _basic("reader", canary))  # no scheme: https
    assert not result.ok
    assert result.message.startswith(f"cannot reach 127.0.0.1:{port}: ")
    assert_presentable(result, canary)


def test_silent_server_times_out(silent_tcp_port: int, canary: str) -> None:
    result = _get(f"http://127.0.0.1:{silent_tcp_port}/", _key(canary), timeout=0.5)
    assert not result.ok
    assert "timed out" in result.message
    assert_presentable(result, canary)


@pytest.mark.parametrize(
    ("auth", "username", "password", "header"),
    [
        ("basic", "Aladdin", "open sesame", "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),  # RFC 7617 2
        ("key", None, "mF_9.B5f-4.1JqM", "Bearer mF_9.B5f-4.1JqM"),  # RFC 6750 2.1
        ("anonymous", None, None, None),
    ],
)
def test_authorization_header(
    auth: str, username: str | None, password: str | None, header: str | None
) -> None:
    assert http.authorization_header(auth, username, password) == header


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        ("https://user:pw@other.example/p?token=abc", "other.example (not followed)"),
        ("/relative?token=abc", "api.example.com (not followed)"),
        (None, "nowhere (no Location header)"),
        ("http://[::1/", "an unreadable Location (not followed)"),
    ],
)
def test_redirect_message_names_only_the_host(location: str | None, shown: str) -> None:
    result = http._judge_status("https://api.example.com/", 307, "Temporary Redirect", location)
    assert result.ok
    assert result.message.endswith(f"redirects to {shown}")
    assert "token" not in result.message and "pw" not in result.message
