"""PostgreSQL connection tests against a private cluster that checks passwords."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from tests.service_fixtures import ServiceLogin, free_tcp_port
from tests.vault.connectors.results import assert_presentable, login

pytestmark = pytest.mark.services


def test_right_password_connects(private_postgres: ServiceLogin) -> None:
    pg = private_postgres
    result = login("postgresql", f"{pg.host}:{pg.port}", pg.user, pg.password, pg.database)
    assert result.ok, result.message
    assert result.message.startswith("ok: connected to PostgreSQL ")
    assert result.message.endswith(f" as {pg.user}")
    assert_presentable(result, pg.password)


def test_wrong_password_fails_with_the_server_reason(
    private_postgres: ServiceLogin, canary: str
) -> None:
    pg = private_postgres
    result = login("postgresql", f"{pg.host}:{pg.port}", pg.user, canary, pg.database)
    assert not result.ok
    assert f'password authentication failed for user "{pg.user}"' in result.message
    assert_presentable(result, canary, pg.password)


def test_default_database_is_the_user_name(private_postgres: ServiceLogin) -> None:
    # No database given: libpq's default, the user's own name, does not exist here.
    pg = private_postgres
    result = login("postgresql", f"{pg.host}:{pg.port}", pg.user, pg.password)
    assert not result.ok
    assert f'database "{pg.user}" does not exist' in result.message


def test_unreachable_port_is_a_result_not_an_exception(canary: str) -> None:
    result = login("postgresql", f"127.0.0.1:{free_tcp_port()}", "alice", canary)
    assert not result.ok
    assert "refused" in result.message.lower()
    assert_presentable(result, canary)


def test_silent_server_times_out(silent_tcp_port: int, canary: str) -> None:
    started = time.monotonic()
    result = login("postgresql", f"127.0.0.1:{silent_tcp_port}", "alice", canary, timeout=1.0)
    assert not result.ok
    assert "timeout" in result.message.lower()
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
    assert not result.ok
    assert "cleartext password" in result.message, result.message
