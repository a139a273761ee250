"""MySQL connection tests: the local MariaDB (no TLS), a private MariaDB with TLS,
and fake servers that ask for the password itself, as an impersonator would."""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from tests.service_fixtures import ServiceLogin
from tests.tls_certificates import CertificateAuthority
from tests.vault.connectors.fake_mysql import full_auth_server
from tests.vault.connectors.results import assert_presentable, login
from vault.connectors import mysql
from vault.format.data_source import TlsMode

pytestmark = pytest.mark.services


def test_right_password_connects(mariadb_user: ServiceLogin) -> None:
    db = mariadb_user
    result = login("mysql", f"{db.host}:{db.port}", db.user, db.password, db.database)
    assert result.ok, result.detail
    pattern = rf"ok: connected to MariaDB \d+\.\d+\.\d+ as {db.user} \(tls disable\)"
    assert re.fullmatch(pattern, result.detail), result.detail
    assert_presentable(result, db.password)


def test_localhost_without_database_connects(mariadb_user: ServiceLogin) -> None:
    db = mariadb_user
    result = login("mysql", f"localhost:{db.port}", db.user, db.password)
    assert result.ok, result.detail


@pytest.mark.parametrize("mode", ["verify-full", "verify-ca", "require"])
def test_with_the_servers_ca_every_tls_mode_logs_in(
    private_mariadb: ServiceLogin, mode: TlsMode
) -> None:
    db = private_mariadb
    ca = db.ca_pem if mode != "require" else None
    result = login("mysql", f"localhost:{db.port}", db.user, db.password, db.database,
                   tls=mode, ca_pem=ca)  # fmt: skip
    assert result.ok, result.detail
    assert result.detail.endswith(f"(tls {mode})")


@pytest.mark.parametrize("mode", ["verify-full", "verify-ca"])
def test_a_certificate_from_another_ca_fails_before_any_login(
    private_mariadb: ServiceLogin, untrusted_ca: CertificateAuthority, mode: TlsMode
) -> None:
    db = private_mariadb
    result = login("mysql", f"{db.host}:{db.port}", db.user, db.password, db.database,
                   tls=mode, ca_pem=untrusted_ca.pem)  # fmt: skip
    assert result.reason == "tls_failed", result.detail


def test_the_default_policy_needs_tls_the_server_does_not_offer(mariadb_user: ServiceLogin) -> None:
    db = mariadb_user  # the machine's MariaDB has no TLS
    result = login("mysql", f"{db.host}:{db.port}", db.user, db.password, tls="verify-full")
    assert result.reason == "tls_failed", result.detail


@pytest.mark.parametrize("plugin", ["caching_sha2_password", "sha256_password"])
@pytest.mark.parametrize(
    ("mode", "offers_tls"), [("verify-full", True), ("require", True), ("disable", False)]
)
def test_an_impersonator_never_gets_the_password(
    untrusted_ca: CertificateAuthority, canary: str, plugin: str, mode: TlsMode, offers_tls: bool
) -> None:
    # Full authentication sends the password in clear over TLS, or RSA-encrypted
    # to a key the server hands over; the fake terminates TLS and holds the key.
    with full_auth_server(plugin, untrusted_ca if offers_tls else None) as fake:
        result = login("mysql", f"127.0.0.1:{fake.port}", "alice", canary, tls=mode, timeout=3.0)
    assert canary.encode() not in b"".join(fake.received)
    expected = "tls_failed" if mode == "verify-full" else "refused_by_policy"
    assert result.reason == expected, result.detail


@pytest.mark.parametrize("plugin", ["caching_sha2_password", "sha256_password"])
def test_a_verified_server_may_ask_for_the_password(
    trusted_ca: CertificateAuthority, canary: str, plugin: str
) -> None:
    with full_auth_server(plugin, trusted_ca) as fake:
        result = login("mysql", f"127.0.0.1:{fake.port}", "alice", canary,
                       tls="verify-full", ca_pem=trusted_ca.pem, timeout=3.0)  # fmt: skip
    assert fake.tls_used
    assert canary.encode() in b"".join(fake.received)  # it is the real server: it gets it
    assert result.reason == "auth_failed"  # the fake then says "access denied"


def test_wrong_password_fails_with_the_server_reason(
    mariadb_user: ServiceLogin, canary: str
) -> None:
    db = mariadb_user
    result = login("mysql", f"{db.host}:{db.port}", db.user, canary, db.database)
    assert result.reason == "auth_failed"
    assert f"Access denied for user '{db.user}'" in result.detail
    assert "(error 1045)" in result.detail
    assert_presentable(result, canary, db.password)


def test_database_without_grant_fails(mariadb_user: ServiceLogin) -> None:
    db = mariadb_user
    result = login("mysql", f"{db.host}:{db.port}", db.user, db.password, "mysql")
    assert result.reason == "auth_failed"
    assert "(error 1044)" in result.detail


def test_unreachable_port_is_a_result_not_an_exception(canary: str, closed_tcp_port: int) -> None:
    result = login("mysql", f"127.0.0.1:{closed_tcp_port}", "alice", canary)
    assert result.reason == "unreachable"
    assert "Connection refused" in result.detail
    assert_presentable(result, canary)


def test_silent_server_times_out(silent_tcp_port: int, canary: str) -> None:
    result = login("mysql", f"127.0.0.1:{silent_tcp_port}", "alice", canary, timeout=0.5)
    assert result.reason == "timeout", result.detail
    assert "timed out" in result.detail
    assert_presentable(result, canary)


@pytest.mark.parametrize(
    ("server_info", "name"),
    [
        ("5.5.5-10.11.19-MariaDB-0+deb12u1", "MariaDB 10.11.19"),
        ("11.4.2-MariaDB", "MariaDB 11.4.2"),
        ("8.0.36-0ubuntu0.22.04.1", "MySQL 8.0.36"),
    ],
)
def test_server_name(server_info: str, name: str) -> None:
    assert mysql._server_name(server_info) == name


@pytest.fixture(params=["mysql_clear_password", "dialog"])
def cleartext_asking_server(request: pytest.FixtureRequest) -> Iterator[tuple[int, list[bytes]]]:
    """A fake MySQL server that switches to a plugin wanting the password in clear text.

    Yields its port and what the client sent after the switch.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    received: list[bytes] = []
    args = (listener, request.param.encode(), received)
    thread = threading.Thread(target=_ask_for_cleartext, args=args, daemon=True)
    thread.start()
    yield listener.getsockname()[1], received
    thread.join(timeout=5)
    listener.close()


def _ask_for_cleartext(listener: socket.socket, plugin: bytes, received: list[bytes]) -> None:
    # CLIENT_LONG_PASSWORD | PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH, no SSL.
    capabilities = 0x1 | 0x200 | 0x8000 | 0x80000
    handshake = (
        b"\x0a8.0.0-fake\x00" + struct.pack("<I", 7) + b"12345678\x00"
        + struct.pack("<HBHHB", capabilities & 0xFFFF, 45, 2, capabilities >> 16, 21)
        + b"\x00" * 10 + b"abcdefghijkl\x00mysql_native_password\x00"
    )  # fmt: skip
    switch = b"\xfe" + plugin + b"\x00" + (b"\x04Password: " if plugin == b"dialog" else b"")
    with contextlib.suppress(OSError), listener.accept()[0] as client:
        client.settimeout(3)
        client.sendall(_packet(0, handshake))
        header = client.recv(4, socket.MSG_WAITALL)  # the handshake response
        client.recv(int.from_bytes(header[:3], "little"), socket.MSG_WAITALL)
        client.sendall(_packet(header[3] + 1, switch))
        while chunk := client.recv(4096):
            received.append(chunk)


def _packet(sequence: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([sequence]) + payload


def test_cleartext_password_request_is_refused(
    cleartext_asking_server: tuple[int, list[bytes]], canary: str
) -> None:
    port, received = cleartext_asking_server
    result = login("mysql", f"127.0.0.1:{port}", "alice", canary, timeout=2.0)
    assert canary.encode() not in b"".join(received)
    assert result.reason == "refused_by_policy"
    assert "asked for the password itself" in result.detail
