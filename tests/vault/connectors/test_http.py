"""HTTP connection tests against local servers that check Basic and Bearer auth.

A secret goes only over verified TLS (``https_auth_server``, whose certificate
comes from the tests' CA); the plain server answers anonymous requests.
"""

from __future__ import annotations

import socket

import pytest

from agent_keys.secret import Secret
from tests.service_fixtures import HttpAuthServer
from tests.vault.connectors.results import LOOPBACK_ALLOWED, assert_presentable
from vault.connectors import dispatch, http
from vault.connectors.connection import ConnectionCredential, ConnectionTestResult
from vault.connectors.destinations import AllowedNetwork, DestinationPolicy
from vault.format.data_source import DataSource, TlsMode

ANONYMOUS = ConnectionCredential("anonymous", None, None)


def _get(
    server: str,
    credential: ConnectionCredential,
    timeout: float = 5.0,
    *,
    tls: TlsMode | None = None,
    ca_pem: str | None = None,
    policy: DestinationPolicy = LOOPBACK_ALLOWED,
) -> ConnectionTestResult:
    mode: TlsMode = tls or ("disable" if server.startswith("http://") else "verify-full")
    source = DataSource("http", server, tls=mode, ca_pem=ca_pem)
    return dispatch.test_connection(source, credential, timeout, policy=policy)


@pytest.fixture
def site(https_auth_server: HttpAuthServer) -> HttpAuthServer:
    return https_auth_server


def _verified_get(
    site: HttpAuthServer, path: str, credential: ConnectionCredential, ca_pem: str
) -> ConnectionTestResult:
    return _get(f"{site.base_url}{path}", credential, ca_pem=ca_pem)


def _basic(user: str, password: str) -> ConnectionCredential:
    return ConnectionCredential("basic", user, Secret.from_text(password))


def _key(key: str) -> ConnectionCredential:
    return ConnectionCredential("key", None, Secret.from_text(key))


def test_basic_right_password(site: HttpAuthServer, trusted_ca_pem: str) -> None:
    result = _verified_get(site, "/basic", _basic(site.user, site.password), trusted_ca_pem)
    assert result.ok, result.detail
    assert result.detail == f"ok: HTTP 200 OK from {site.base_url.removeprefix('https://')}"
    assert_presentable(result, site.password)


@pytest.mark.parametrize("mode", ["verify-full", "verify-ca"])
def test_https_with_the_servers_ca_each_verifying_mode_logs_in(
    site: HttpAuthServer, trusted_ca_pem: str, mode: TlsMode
) -> None:
    credential = _basic(site.user, site.password)
    result = _get(f"{site.base_url}/basic", credential, tls=mode, ca_pem=trusted_ca_pem)
    assert result.ok, result.detail


def test_https_require_reaches_the_server_without_a_secret(site: HttpAuthServer) -> None:
    # Unverified TLS: fine for an anonymous request, never for a secret (validation).
    result = _get(f"{site.base_url}/error", ANONYMOUS, tls="require")
    assert result.detail.startswith("failed: HTTP 500"), result.detail


def test_https_refuses_a_certificate_the_system_does_not_trust(
    site: HttpAuthServer, canary: str
) -> None:
    result = _get(f"{site.base_url}/basic", _basic("reader", canary))
    assert result.reason == "tls_failed", result.detail
    assert_presentable(result, canary)


def test_the_host_name_is_resolved_once_and_that_address_is_used(
    http_auth_server: HttpAuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DNS rebinding: the first answer passes the check, a later one would point
    # at a refused address.  Only the first is ever asked for, and used.
    site = http_auth_server
    port = int(site.base_url.rsplit(":", 1)[1])
    asked: list[str] = []
    real = socket.getaddrinfo

    def rebinding(host: str, *args: object, **kwargs: object) -> object:
        if host == "rebind.example":
            asked.append(host)
            host = "127.0.0.1" if len(asked) == 1 else "169.254.169.254"
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    only_this_server = DestinationPolicy(allowed=(AllowedNetwork.parse("127.0.0.1/32", port),))
    result = _get(f"http://rebind.example:{port}/error", ANONYMOUS, policy=only_this_server)
    assert asked == ["rebind.example"]
    assert result.detail.startswith("failed: HTTP 500"), result.detail  # it reached the server


def test_basic_wrong_password(site: HttpAuthServer, trusted_ca_pem: str, canary: str) -> None:
    result = _verified_get(site, "/basic", _basic(site.user, canary), trusted_ca_pem)
    assert result == ConnectionTestResult("auth_failed", "authentication failed (HTTP 401)")


def test_basic_without_credentials(http_auth_server: HttpAuthServer) -> None:
    result = _get(f"{http_auth_server.base_url}/basic", ANONYMOUS)
    assert result == ConnectionTestResult("auth_failed", "authentication failed (HTTP 401)")


def test_bearer_right_key(site: HttpAuthServer, trusted_ca_pem: str) -> None:
    result = _verified_get(site, "/bearer", _key(site.key), trusted_ca_pem)
    assert result.ok, result.detail
    assert_presentable(result, site.key)


def test_bearer_wrong_key(site: HttpAuthServer, trusted_ca_pem: str, canary: str) -> None:
    result = _verified_get(site, "/bearer", _key(canary), trusted_ca_pem)
    assert result == ConnectionTestResult("auth_failed", "authentication failed (HTTP 401)")


def test_redirect_is_reported_not_followed(site: HttpAuthServer, trusted_ca_pem: str) -> None:
    result = _verified_get(site, "/redirect", _basic(site.user, site.password), trusted_ca_pem)
    assert result.ok
    assert result.detail.startswith("ok: HTTP 302 from 127.0.0.1:")
    assert result.detail.endswith("redirects to localhost (not followed)")
    assert "/next" not in site.paths_seen


def test_server_error_fails_with_status(http_auth_server: HttpAuthServer) -> None:
    result = _get(f"{http_auth_server.base_url}/error", ANONYMOUS)
    assert result.reason == "unreachable"
    assert result.detail.startswith("failed: HTTP 500 ")


def test_a_missing_resource_is_database_missing(http_auth_server: HttpAuthServer) -> None:
    assert _get(f"{http_auth_server.base_url}/nothing", ANONYMOUS).reason == "database_missing"


def test_unreachable_port_is_a_result_not_an_exception(canary: str, closed_tcp_port: int) -> None:
    result = _get(f"https://127.0.0.1:{closed_tcp_port}/", _key(canary))
    assert result.reason == "unreachable"
    assert "Connection refused" in result.detail
    assert_presentable(result, canary)


def test_tls_to_a_plain_http_server_fails(http_auth_server: HttpAuthServer, canary: str) -> None:
    port = http_auth_server.base_url.rsplit(":", 1)[1]
    result = _get(f"127.0.0.1:{port}", _basic("reader", canary))  # no scheme: https
    assert result.reason == "tls_failed", result.detail
    assert result.detail.startswith(f"cannot reach 127.0.0.1:{port}: ")
    assert_presentable(result, canary)


def test_silent_server_times_out(silent_tcp_port: int, canary: str) -> None:
    result = _get(f"https://127.0.0.1:{silent_tcp_port}/", _key(canary), timeout=0.5)
    assert result.reason == "timeout"
    assert "timed out" in result.detail
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
    assert result.detail.endswith(f"redirects to {shown}")
    assert "token" not in result.detail and "pw" not in result.detail
