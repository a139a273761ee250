"""Fixtures for real servers: a private PostgreSQL cluster with TLS, a MariaDB user, HTTP auth.

A test that needs a service calls ``require_service``: it skips where the
service is missing and fails instead when ``GWVAULT_REQUIRE_SERVICES=1`` (CI
sets it), so a broken CI machine cannot pass by skipping.

The private PostgreSQL cluster serves TLS with a certificate from the tests'
own CA (``trusted_ca``); ``untrusted_ca`` is what an impersonator's
certificate would chain to.  Its log records every connection, so a test can
tell whether a login attempt reached it.
"""

from __future__ import annotations

import base64
import hmac
import os
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from glob import glob
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NoReturn, cast

import psycopg
import pymysql
import pytest
from psycopg import sql

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
    password: str
    database: str
    ca_pem: str | None = None


@dataclass(frozen=True)
class PostgresCluster:
    """The private cluster: where it listens, its superuser, its CA and its log."""

    port: int
    superuser_password: str
    ca_pem: str
    log: Path

    def connections_logged(self, user: str) -> list[str]:
        """Log lines of login attempts by ``user`` that reached authentication."""
        marks = (f"user={user} ", f'user "{user}"', f'identity="{user}"')
        return [line for line in self.log.read_text().splitlines() if any(m in line for m in marks)]


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
def private_postgres(private_cluster: PostgresCluster) -> ServiceLogin:
    """A login (scram-sha-256) on the private cluster, with the CA of its TLS."""
    return _create_test_login(private_cluster, "gwv_tester", "scram-sha-256")


@pytest.fixture(scope="session")
def postgres_md5_user(private_cluster: PostgresCluster) -> ServiceLogin:
    """A login whose password the cluster checks with MD5 (as an impersonator would ask)."""
    return _create_test_login(private_cluster, "gwv_md5", "md5")


@pytest.fixture(scope="session")
def private_cluster(trusted_ca: CertificateAuthority) -> Iterator[PostgresCluster]:
    """A throw-away PostgreSQL cluster on 127.0.0.1 that checks passwords, with TLS.

    The machine's own cluster trusts every local login, so a wrong password
    would pass there.  initdb and postgres refuse to run as root, so under
    root the cluster belongs to the ``postgres`` OS user.  ``gwv_md5`` logs in
    with MD5, everyone else with scram-sha-256; TLS is offered, not required.
    """
    initdb, pg_ctl = (_newest_postgres_bin_dir() / name for name in ("initdb", "pg_ctl"))
    owner = _cluster_owner()
    # Not pytest's tmp_path: it sits in a 0700 root directory the owner cannot enter.
    root = Path(tempfile.mkdtemp(prefix="gwvault-pg-", dir="/tmp"))
    data, sockets, pwfile = root / "data", root / "sockets", root / "pwfile"
    superuser_password = "su-" + os.urandom(16).hex()
    sockets.mkdir()
    _write_owned(pwfile, superuser_password, owner)  # never on a command line (ps)
    for path in (root, sockets):
        shutil.chown(path, owner.pw_uid, owner.pw_gid)
    port = free_tcp_port()
    server_options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off -c ssl=on"
        " -c ssl_cert_file=server.crt -c ssl_key_file=server.key -c log_connections=on"
    )
    try:
        _run_as(owner, root, initdb, "-D", data, "-U", "gwv_admin", "--auth=scram-sha-256",
                f"--pwfile={pwfile}", "-E", "UTF8", "--no-locale", "--no-sync")  # fmt: skip
        pwfile.unlink()
        _configure_tls_and_md5(data, trusted_ca, owner)
        _run_as(owner, root, pg_ctl, "start", "-w", "-t", "30", "-D", data,
                "-l", root / "server.log", "-o", server_options)  # fmt: skip
        try:
            yield PostgresCluster(port, superuser_password, trusted_ca.pem, root / "server.log")
        finally:
            _run_as(owner, root, pg_ctl, "stop", "-D", data, "-m", "fast")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _newest_postgres_bin_dir() -> Path:
    candidates = {Path(p) for p in glob("/usr/lib/postgresql/*/bin")}
    if on_path := shutil.which("initdb"):
        candidates.add(Path(on_path).resolve().parent)
    usable = [d for d in candidates if (d / "initdb").exists() and (d / "pg_ctl").exists()]
    if not usable:
        require_service("PostgreSQL server binaries (initdb, pg_ctl) not found")
    return max(usable, key=_postgres_version)


def _postgres_version(bin_dir: Path) -> tuple[int, int]:
    version_call = [str(bin_dir / "initdb"), "--version"]
    done = subprocess.run(version_call, capture_output=True, text=True, check=False)
    found = re.search(r"(\d+)(?:\.(\d+))?", done.stdout)
    return (int(found[1]), int(found[2] or 0)) if found else (0, 0)


def _cluster_owner() -> pwd.struct_passwd:
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        require_service("running as root and no 'postgres' OS user to own a test cluster")


def _write_owned(path: Path, text: str, owner: pwd.struct_passwd) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text + "\n")
    os.chown(path, owner.pw_uid, owner.pw_gid)


def _run_as(owner: pwd.struct_passwd, cwd: Path, *args: str | Path) -> None:
    """Run a server tool as the cluster owner; subprocess drops uid, gid and groups itself."""
    other = owner.pw_uid != os.geteuid()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"HOME": str(cwd)}
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=90, check=False, user=owner.pw_uid if other else None,
        group=owner.pw_gid if other else None, extra_groups=[] if other else None,
    )  # fmt: skip
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).split())[-500:]
        require_service(f"{Path(args[0]).name} {args[1]} failed: {tail}")


def _configure_tls_and_md5(data: Path, ca: CertificateAuthority, owner: pwd.struct_passwd) -> None:
    server = issue_server_certificate(ca)
    for name, text in (("server.crt", server.cert_pem), ("server.key", server.key_pem)):
        _write_owned(data / name, text, owner)  # 0600: PostgreSQL refuses a readable key
    hba = data / "pg_hba.conf"
    hba.write_text("host all gwv_md5 127.0.0.1/32 md5\n" + hba.read_text())


def _create_test_login(cluster: PostgresCluster, name: str, method: str) -> ServiceLogin:
    login = ServiceLogin(
        "127.0.0.1", cluster.port, name, "pg-" + os.urandom(16).hex(), f"{name}_db", cluster.ca_pem
    )
    with psycopg.connect(
        host=login.host, port=cluster.port, dbname="postgres", user="gwv_admin",
        password=cluster.superuser_password, autocommit=True, sslmode="disable",
    ) as admin:  # fmt: skip
        user, database = sql.Identifier(login.user), sql.Identifier(login.database)
        admin.execute(sql.SQL("SET password_encryption = {}").format(sql.Literal(method)))
        create_role = sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}")
        admin.execute(create_role.format(user, sql.Literal(login.password)))
        admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, user))
    return login


@pytest.fixture(scope="session")
def mariadb_user() -> Iterator[ServiceLogin]:
    """A fresh MariaDB user and database with a random password, dropped afterwards."""
    user = database = f"gwv_test_{os.urandom(4).hex()}"
    password = "gwv-" + os.urandom(16).hex()
    # MariaDB may resolve 127.0.0.1 to localhost, so the user exists under both.
    hosts = ("127.0.0.1", "localhost")
    with _mariadb_root() as admin, admin.cursor() as cursor:
        cursor.execute("SELECT @@port")
        port = int(cursor.fetchone()[0])  # type: ignore[index]
        cursor.execute(f"CREATE DATABASE `{database}`")
        for host in hosts:
            cursor.execute("CREATE USER %s@%s IDENTIFIED BY %s", (user, host, password))
            cursor.execute(f"GRANT ALL ON `{database}`.* TO %s@%s", (user, host))
    try:
        yield ServiceLogin("127.0.0.1", port, user, password, database)
    finally:
        with _mariadb_root() as admin, admin.cursor() as cursor:
            for host in hosts:
                cursor.execute("DROP USER IF EXISTS %s@%s", (user, host))
            cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")


def _mariadb_root() -> pymysql.Connection[pymysql.cursors.Cursor]:
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


class _AuthServer(ThreadingHTTPServer):
    site: HttpAuthServer

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet: a client refusing our certificate is what some tests expect."""


@pytest.fixture(scope="session")
def http_auth_server() -> Iterator[HttpAuthServer]:
    """A threaded stdlib HTTP server on a free 127.0.0.1 port, shut down at the end."""
    yield from _auth_server(None)


@pytest.fixture(scope="session")
def https_auth_server(trusted_ca: CertificateAuthority) -> Iterator[HttpAuthServer]:
    """The same over TLS, with a certificate from the tests' CA."""
    server = issue_server_certificate(trusted_ca)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with memory_files(server.cert_pem.encode(), server.key_pem.encode()) as (cert, key):
        context.load_cert_chain(cert, key)
    yield from _auth_server(context)


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
    thread = threading.Thread(target=server.serve_forever, name="http-auth-server", daemon=True)
    thread.start()
    try:
        yield server.site
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
def silent_tcp_port() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (for timeouts)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # the kernel completes handshakes; nobody calls accept()
        port: int = listener.getsockname()[1]
        yield port
