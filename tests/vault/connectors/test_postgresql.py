"""PostgreSQL connection tests against a private cluster that checks passwords, with TLS.

The cluster's certificate comes from the tests' CA.  For a credential that
trusts another CA (or the system store, the default) the cluster is an
impersonator, which must never get a login attempt: no SCRAM proof, no MD5
response, no password (threat T-CN-1).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.postgres_servers import PostgresServer
from tests.service_fixtures import ServiceLogin
from tests.tls_certificates import CertificateAuthority
from tests.vault.connectors.results import assert_presentable, login
from vault.connectors import postgresql
from vault.format.data_source import TlsMode

pytestmark = pytest.mark.services


def _server(pg: ServiceLogin) -> str:
    return f"{pg.host}:{pg.port}"


def test_right_password_connects(private_postgres: ServiceLogin) -> None:
    pg = private_postgres
    result = login("postgresql", _server(pg), pg.user, pg.password, pg.database)
    assert result.ok, result.detail
    assert result.detail.startswith("ok: connected to PostgreSQL ")
    assert result.detail.endswith(f" as {pg.user} (no TLS, tls disable)")
    assert_presentable(result, pg.password)


@pytest.mark.parametrize("mode", ["verify-full", "verify-ca", "require"])
def test_with_the_servers_ca_every_tls_mode_logs_in_over_tls(
    private_postgres: ServiceLogin, mode: TlsMode
) -> None:
    pg = private_postgres
    ca = pg.ca_pem if mode != "require" else None
    result = login(
        "postgresql", _server(pg), pg.user, pg.password, pg.database, tls=mode, ca_pem=ca
    )
    assert result.ok, result.detail
    assert result.detail.endswith(f"(TLS, tls {mode})")


def test_verify_full_checks_the_name_in_the_certificate(private_postgres: ServiceLogin) -> None:
    # The certificate names localhost, 127.0.0.1 and ::1; "127.0.0.2" is none of them.
    pg = private_postgres
    server = f"127.0.0.2:{pg.port}"
    result = login("postgresql", server, pg.user, pg.password, pg.database,
                   tls="verify-full", ca_pem=pg.ca_pem)  # fmt: skip
    assert result.reason in ("tls_failed", "unreachable"), result.detail


def test_verify_full_without_a_ca_uses_the_system_store_python_uses(
    private_postgres: ServiceLogin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if the tests' CA were a system CA: libpq must find it where ssl does.
    pg = private_postgres
    (tmp_path / "system.pem").write_text(pg.ca_pem or "")
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "system.pem"))
    result = login("postgresql", _server(pg), pg.user, pg.password, pg.database, tls="verify-full")
    assert result.ok, result.detail


def test_the_system_store_is_the_ca_file_python_uses_not_the_bundled_libpqs() -> None:
    # psycopg's own libpq looks under its OpenSSL directory (/usr/lib/psycopg-openssl
    # in the wheel), which holds nothing: verify-full would fail every real server.
    system = ssl.get_default_verify_paths().cafile
    options = postgresql.libpq_tls_options("verify-full", None)
    assert options["sslrootcert"] == (system or "system")
    assert postgresql.libpq_tls_options("verify-ca", "/proc/self/fd/9")["sslrootcert"] == (
        "/proc/self/fd/9"
    )
    assert options["require_auth"] == "scram-sha-256" and options["channel_binding"] == "require"
    assert "sslrootcert" not in postgresql.libpq_tls_options("require", None)


def test_the_default_policy_refuses_a_certificate_the_system_does_not_trust(
    private_postgres: ServiceLogin,
) -> None:
    pg = private_postgres
    result = login("postgresql", _server(pg), pg.user, pg.password, pg.database, tls="verify-full")
    assert result.reason == "tls_failed", result.detail


@pytest.mark.parametrize("mode", ["verify-full", "require"])
def test_an_impersonator_never_gets_a_password_or_md5_response(
    shared_postgres: PostgresServer,
    postgres_md5_user: ServiceLogin,
    private_postgres: ServiceLogin,
    untrusted_ca: CertificateAuthority,
    mode: TlsMode,
) -> None:
    # To a credential that trusts another CA, this cluster (which asks gwv_md5
    # for an MD5 response) is an impersonator.  verify-full refuses its
    # certificate; require encrypts but verifies nothing, so SCRAM-only
    # authentication is what keeps the MD5 response (an offline oracle) back.
    md5 = postgres_md5_user
    ca = untrusted_ca.pem if mode == "verify-full" else None
    result = login("postgresql", _server(md5), md5.user, md5.password, md5.database,
                   tls=mode, ca_pem=ca)  # fmt: skip
    expected = "tls_failed" if mode == "verify-full" else "refused_by_policy"
    assert result.reason == expected, result.detail
    _flush_log(private_postgres)
    assert shared_postgres.connections_logged(md5.user) == []


def _flush_log(pg: ServiceLogin) -> None:
    """Log in once more and wait for its line: earlier lines are written by then."""
    login("postgresql", _server(pg), pg.user, pg.password, pg.database)


def test_wrong_password_fails_with_the_server_reason(
    private_postgres: ServiceLogin, canary: str
) -> None:
    pg = private_postgres
    result = login("postgresql", _server(pg), pg.user, canary, pg.database)
    assert result.reason == "auth_failed"
    assert f'password authentication failed for user "{pg.user}"' in result.detail
    assert_presentable(result, canary, pg.password)


def test_default_database_is_the_user_name(private_postgres: ServiceLogin) -> None:
    # No database given: libpq's default, the user's own name, does not exist here.
    pg = private_postgres
    result = login("postgresql", _server(pg), pg.user, pg.password)
    assert result.reason == "database_missing"
    assert f'database "{pg.user}" does not exist' in result.detail


def test_unreachable_port_is_a_result_not_an_exception(canary: str, closed_tcp_port: int) -> None:
    result = login("postgresql", f"127.0.0.1:{closed_tcp_port}", "alice", canary)
    assert result.reason == "unreachable"
    assert "refused" in result.detail.lower()
    assert_presentable(result, canary)


def test_silent_server_times_out(silent_tcp_port: int, canary: str) -> None:
    started = time.monotonic()
    result = login("postgresql", f"127.0.0.1:{silent_tcp_port}", "alice", canary, timeout=1.0)
    assert result.reason == "timeout", result.detail
    assert time.monotonic() - started < 6  # libpq's floor is 2 s
    assert_presentable(result, canary)


def test_a_mariadb_port_is_not_mistaken_for_postgresql(
    mariadb_user: ServiceLogin, canary: str
) -> None:
    result = login("postgresql", f"127.0.0.1:{mariadb_user.port}", "alice", canary, timeout=2.0)
    assert not result.ok
    assert_presentable(result, canary)


@pytest.fixture
def cleartext_asking_server() -> Iterator[tuple[int, list[bytes]]]:
    """A fake PostgreSQL server that refuses TLS and asks for the password in clear text.

    Yields its port and what clients sent after the request (a TLS-stripping
    attacker's view).
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    received: list[bytes] = []
    thread = threading.Thread(target=_ask_for_cleartext, args=(listener, received), daemon=True)
    thread.start()
    yield listener.getsockname()[1], received
    thread.join(timeout=5)
    listener.close()


def _ask_for_cleartext(listener: socket.socket, received: list[bytes]) -> None:
    with contextlib.suppress(OSError), listener.accept()[0] as client:
        client.settimeout(3)
        while True:
            length, code = struct.unpack("!ii", client.recv(8, socket.MSG_WAITALL))
            if code not in (80877103, 80877104):  # SSLRequest, GSSENCRequest
                break
            client.sendall(b"N")  # no TLS, no GSS encryption here
        client.recv(length - 8, socket.MSG_WAITALL)  # rest of the startup message
        client.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
        while chunk := client.recv(4096):
            received.append(chunk)


@pytest.mark.skipif(psycopg.pq.version() < 160000, reason="require_auth needs libpq 16")
def test_cleartext_password_request_is_refused(
    cleartext_asking_server: tuple[int, list[bytes]], canary: str
) -> None:
    port, received = cleartext_asking_server
    result = login("postgresql", f"127.0.0.1:{port}", "alice", canary, timeout=2.0)
    assert canary.encode() not in b"".join(received)
    assert result.reason == "refused_by_policy"
    assert "cleartext password" in result.detail, result.detail
