"""Fixtures for real servers: the tests' CAs, a MariaDB user, an HTTP server that checks auth.

A test that needs a service calls ``require_service``: it skips where the
service is missing and fails instead when ``GWVAULT_REQUIRE_SERVICES=1`` (CI
sets it), so a broken CI machine cannot pass by skipping.

The private servers serve TLS with certificates from the tests' own CA
(``trusted_ca``); ``untrusted_ca`` is what an impersonator's certificate would
chain to.  The private PostgreSQL servers are in tests.postgres_servers.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NoReturn, cast

import pymysql
import pytest

from agent_keys.private_files import memory_files
from tests.tls_certificates import CertificateAuthority, issue_server_certificate, make_ca

REQUIRE_SERVICES_ENV = "GWVAULT_REQUIRE_SERVICES"
MARIADB_SOCKET = "/run/mysqld/mysqld.sock"


def require_service(reason: str) -> NoReturn:
    """Skip the test for a missing service, or fail it when services are required."""
    if os.environ.get(REQUIRE_SERVICES_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_SERVICES_ENV}=1)", pytrace=False)
    pytest.skip(reason)


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class ServiceLogin:
    """How to log in to a test server with a known password (and the CA of its TLS)."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str
    ca_pem: str | None = None


@pytest.fixture(scope="session")
def trusted_ca() -> CertificateAuthority:
    return make_ca("gwvault test CA")


@pytest.fixture(scope="session")
def trusted_ca_pem(trusted_ca: CertificateAuthority) -> str:
    return trusted_ca.pem


@pytest.fixture(scope="session")
def untrusted_ca() -> CertificateAuthority:
    return make_ca("an impersonator's CA")


@pytest.fixture(scope="session")
def mariadb_user() -> Iterator[ServiceLogin]:
    """A fresh MariaDB user and database with a random password, dropped afterwards."""
    user = database = f"gwv_test_{os.urandom(4).hex()}"
    password = "gwv-" + os.urandom(16).hex()
    # MariaDB may resolve 127.0.0.1 to localhost, so the user exists under both.
    hosts = ("127.0.0.1", "localhost")
    with mariadb_root() as admin, admin.cursor() as cursor:
        cursor.execute("SELECT @@port")
        port = int(cursor.fetchone()[0])  # type: ignore[index]
        cursor.execute(f"CREATE DATABASE `{database}`")
        for host in hosts:
            cursor.execute("CREATE USER %s@%s IDENTIFIED BY %s", (user, host, password))
            cursor.execute(f"GRANT ALL ON `{database}`.* TO %s@%s", (user, host))
    try:
        yield ServiceLogin("127.0.0.1", port, user, password, database)
    finally:
        with mariadb_root() as admin, admin.cursor() as cursor:
            for host in hosts:
                cursor.execute("DROP USER IF EXISTS %s@%s", (user, host))
            cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")


def mariadb_root() -> pymysql.Connection[pymysql.cursors.Cursor]:
    """Root on the local MariaDB (socket first, then TCP); it has no root password here."""
    try:
        return pymysql.connect(user="root", password="", unix_socket=MARIADB_SOCKET)
    except pymysql.MySQLError:
        pass
    try:
        return pymysql.connect(user="root", password="", host="127.0.0.1", connect_timeout=3)
    except pymysql.MySQLError as e:
        require_service(f"local MariaDB not reachable as root: {e}")


@dataclass
class HttpAuthServer:
    """A local HTTP server: /basic wants HTTP Basic, /bearer a key, /redirect moves."""

    base_url: str
    user: str
    password: str
    key: str
    paths_seen: list[str] = field(default_factory=list)


class _AuthCheckingHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server = cast(_AuthServer, self.server)
        site = server.site
        site.paths_seen.append(self.path)
        basic = base64.b64encode(f"{site.user}:{site.password}".encode()).decode()
        expected = {"/basic": f"Basic {basic}", "/bearer": f"Bearer {site.key}"}
        given = self.headers.get("Authorization", "").encode()
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{server.server_port}/next")
        elif self.path not in expected:
            self.send_response(404 if self.path != "/error" else 500)
        elif hmac.compare_digest(given, expected[self.path].encode()):
            self.send_response(200)
        else:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="gwvault-test"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet, so the test output stays readable."""


class QuietHttpServer(ThreadingHTTPServer):
    """A threaded stdlib server that logs no client's failure."""

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet: a client refusing our certificate is what some tests expect."""


class _AuthServer(QuietHttpServer):
    site: HttpAuthServer


@pytest.fixture(scope="session")
def http_auth_server() -> Iterator[HttpAuthServer]:
    """A threaded stdlib HTTP server on a free 127.0.0.1 port, shut down at the end."""
    yield from _auth_server(None)


@pytest.fixture(scope="session")
def https_auth_server(trusted_ca: CertificateAuthority) -> Iterator[HttpAuthServer]:
    """The same over TLS, with a certificate from the tests' CA."""
    yield from _auth_server(server_tls_context(trusted_ca))


def server_tls_context(ca: CertificateAuthority) -> ssl.SSLContext:
    """A TLS server context with a new certificate from ``ca`` for localhost and loopback."""
    server = issue_server_certificate(ca)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with memory_files(server.cert_pem.encode(), server.key_pem.encode()) as (cert, key):
        context.load_cert_chain(cert, key)
    return context


def _auth_server(context: ssl.SSLContext | None) -> Iterator[HttpAuthServer]:
    server = _AuthServer(("127.0.0.1", 0), _AuthCheckingHandler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    scheme = "https" if context is not None else "http"
    server.site = HttpAuthServer(
        base_url=f"{scheme}://127.0.0.1:{server.server_address[1]}",
        user="gateway-reader",
        password="basic-" + os.urandom(12).hex(),
        key="key-" + os.urandom(16).hex(),
    )
    with serving_in_a_thread(server, "http-auth-server"):
        yield server.site


@contextlib.contextmanager
def serving_in_a_thread(server: ThreadingHTTPServer, name: str) -> Iterator[None]:
    """``server`` answering on a thread of its own until the block ends, then closed."""
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def mute_listener() -> Iterator[socket.socket]:
    """A loopback listener that never accepts: any connection attempt queues up in it,
    so a test can show that nothing tried to connect (``nobody_connected``)."""
    with socket.create_server(("127.0.0.1", 0), backlog=8) as listener:
        listener.setblocking(False)
        yield listener


def nobody_connected(listener: socket.socket) -> bool:
    """Whether no connection is waiting on a ``mute_listener``."""
    try:
        listener.accept()[0].close()
    except BlockingIOError:
        return True
    return False


@pytest.fixture
def closed_tcp_port() -> Iterator[int]:
    """A loopback port that refuses connections at once, held for the test: a socket
    bound there but not listening answers a SYN with a reset, and keeps any other
    test (in this process or a parallel worker) from listening on it meanwhile."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port: int = holder.getsockname()[1]
        yield port


@pytest.fixture
def silent_tcp_port() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (for timeouts)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # the kernel completes handshakes; nobody calls accept()
        port: int = listener.getsockname()[1]
        yield port
