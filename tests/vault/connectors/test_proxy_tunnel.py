"""HTTP data-source tests through a real proxy (tinyproxy, ``tests.proxy_fixtures``).

The proxy only tunnels: TLS to the destination is end-to-end, so the
destination's certificate is still verified (an impersonator's fails through
the proxy as it fails directly), and the destination policy still applies to
the real target before the proxy hears of it.  A wrong proxy password is a
clear 407, a proxy that is down or silent a clear failure within the test's
deadline, and the proxy's password shows nowhere.
"""

from __future__ import annotations

import re
import socket
import threading
from urllib.parse import urlsplit

import pytest

from agent_keys.secret import Secret
from tests.proxy_fixtures import TinyProxy
from tests.service_fixtures import HttpAuthServer
from tests.tls_certificates import CertificateAuthority
from tests.vault.connectors.results import LOOPBACK_ALLOWED
from vault.connectors import dispatch
from vault.connectors.connection import ConnectionCredential, ConnectionTestResult
from vault.connectors.deadline import Deadline
from vault.connectors.destinations import DestinationPolicy
from vault.connectors.proxy_route import ProxyRoute
from vault.connectors.proxy_tunnel import ProxyAuthError, ProxyError, connect_via
from vault.format.data_source import DataSource
from vault.proxy.settings import ProxySettings, parse_no_proxy


def _test(
    site: HttpAuthServer,
    proxy: ProxySettings,
    ca_pem: str,
    *,
    policy: DestinationPolicy = LOOPBACK_ALLOWED,
    timeout: float = 5.0,
) -> ConnectionTestResult:
    source = DataSource("http", f"{site.base_url}/basic", tls="verify-full", ca_pem=ca_pem)
    login = ConnectionCredential("basic", site.user, Secret.from_text(site.password))
    routed = DestinationPolicy(policy.allowed, any_network=policy.any_network, proxy=proxy)
    return dispatch.test_connection(source, login, timeout, policy=routed)


def _port(site: HttpAuthServer) -> int:
    return urlsplit(site.base_url).port or 443


def test_an_http_test_goes_through_the_proxy_and_verifies_the_destination(
    https_auth_server: HttpAuthServer, tinyproxy: TinyProxy, trusted_ca_pem: str
) -> None:
    before = tinyproxy.tunnels_to(_port(https_auth_server))
    result = _test(https_auth_server, tinyproxy.settings(), trusted_ca_pem)
    assert result.ok, result.detail
    assert tinyproxy.tunnels_to(_port(https_auth_server)) == before + 1
    assert tinyproxy.password not in tinyproxy.log()


def test_an_impersonators_certificate_fails_through_the_proxy(
    https_auth_server: HttpAuthServer, tinyproxy: TinyProxy, untrusted_ca: CertificateAuthority
) -> None:
    # The destination's certificate is checked against a CA it does not chain to.
    before = tinyproxy.tunnels_to(_port(https_auth_server))
    result = _test(https_auth_server, tinyproxy.settings(), untrusted_ca.pem)
    assert result.reason == "tls_failed", result.detail
    assert tinyproxy.tunnels_to(_port(https_auth_server)) == before + 1


def test_a_wrong_proxy_password_is_a_clear_407_that_never_shows_it(
    https_auth_server: HttpAuthServer, tinyproxy: TinyProxy, trusted_ca_pem: str
) -> None:
    wrong = "wrong-" + tinyproxy.password
    result = _test(https_auth_server, tinyproxy.settings(wrong), trusted_ca_pem)
    assert result.reason == "unreachable"
    # tinyproxy answers a CONNECT with 401 where RFC 9110 says 407: both mean the login.
    assert re.search(r"wants a login \(HTTP 40[17]\)", result.detail), result.detail
    assert "gwvault proxy set" in result.detail
    assert wrong not in result.detail and tinyproxy.password not in result.detail
    with pytest.raises(ProxyAuthError) as raised:
        connect_via(tinyproxy.route(wrong), "127.0.0.1", _port(https_auth_server), Deadline(5))
    assert wrong not in str(raised.value) and wrong not in repr(raised.value)
    assert wrong not in repr(tinyproxy.route(wrong))


def test_without_a_login_the_proxy_refuses_with_407(
    https_auth_server: HttpAuthServer, tinyproxy: TinyProxy
) -> None:
    route = ProxyRoute(tinyproxy.host, tinyproxy.port)
    with pytest.raises(ProxyAuthError, match=r"HTTP 40[17]"):
        connect_via(route, "127.0.0.1", _port(https_auth_server), Deadline(5))


def test_a_proxy_that_is_down_is_a_clear_failure(
    https_auth_server: HttpAuthServer, closed_tcp_port: int, trusted_ca_pem: str
) -> None:
    down = ProxySettings("custom", ProxyRoute("127.0.0.1", closed_tcp_port))
    result = _test(https_auth_server, down, trusted_ca_pem)
    assert result.reason == "unreachable"
    assert f"cannot reach the proxy 127.0.0.1:{closed_tcp_port}" in result.detail


def test_a_silent_proxy_ends_within_the_tests_deadline(
    https_auth_server: HttpAuthServer, silent_tcp_port: int, trusted_ca_pem: str
) -> None:
    silent = ProxySettings("custom", ProxyRoute("127.0.0.1", silent_tcp_port))
    result = _test(https_auth_server, silent, trusted_ca_pem, timeout=0.5)
    assert result.reason == "timeout", result.detail


def test_the_destination_policy_still_applies_to_the_real_target(
    https_auth_server: HttpAuthServer, tinyproxy: TinyProxy, trusted_ca_pem: str
) -> None:
    # A caller who is not an admin may not reach loopback: the proxy does not
    # change that, and is never asked.
    before = tinyproxy.log().count("CONNECT 127.0.0.1:")
    result = _test(https_auth_server, tinyproxy.settings(), trusted_ca_pem,
                   policy=DestinationPolicy())  # fmt: skip
    assert result.reason == "refused_by_policy"
    assert tinyproxy.log().count("CONNECT 127.0.0.1:") == before


def test_no_proxy_hosts_and_mode_none_go_direct(
    https_auth_server: HttpAuthServer, tinyproxy: TinyProxy, trusted_ca_pem: str
) -> None:
    before = tinyproxy.tunnels_to(_port(https_auth_server))
    bypassing = ProxySettings("custom", tinyproxy.route(), parse_no_proxy("127.0.0.0/8"))
    for settings in (bypassing, ProxySettings()):
        assert _test(https_auth_server, settings, trusted_ca_pem).ok
    assert tinyproxy.tunnels_to(_port(https_auth_server)) == before


def test_a_proxy_that_answers_garbage_is_refused(trusted_ca_pem: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        route = ProxyRoute("127.0.0.1", port)
        answered: list[bytes] = []

        def answer() -> None:
            conn, _ = listener.accept()
            with conn:
                answered.append(conn.recv(4096))
                conn.sendall(b"SSH-2.0-OpenSSH\r\n\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        with pytest.raises(ProxyError, match="did not answer in HTTP"):
            connect_via(route, "example.org", 443, Deadline(5))
        thread.join(5)
    assert answered[0].startswith(b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443")
    assert b"Proxy-Authorization" not in answered[0]
