"""A private MariaDB server with TLS, started by the tests (mariadb-install-db + mariadbd).

The machine's own MariaDB has no TLS, so it cannot show certificate
verification.  This one runs on a free 127.0.0.1 port in a temporary
directory, owned by the ``mysql`` OS user when the tests run as root, and
serves a certificate from the tests' CA (``trusted_ca``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from tests.service_fixtures import ServiceLogin, free_tcp_port, require_service
from tests.tls_certificates import CertificateAuthority, issue_server_certificate

START_SECONDS = 30


@pytest.fixture(scope="session")
def private_mariadb(trusted_ca: CertificateAuthority) -> Iterator[ServiceLogin]:
    """A mysql_native_password login on a private MariaDB that offers TLS."""
    install, server = shutil.which("mariadb-install-db"), shutil.which("mariadbd", path=_SBIN)
    if install is None or server is None:
        require_service("MariaDB server binaries (mariadb-install-db, mariadbd) not found")
    owner = _owner()
    root = Path(tempfile.mkdtemp(prefix="gwvault-mariadb-", dir="/tmp"))
    try:
        shutil.chown(root, owner.pw_uid, owner.pw_gid)
        _write_certificate(root, trusted_ca, owner)
        # A temporary directory of its own: the bootstrap's temporary tables are
        # named per process, and servers of parallel test workers in one /tmp
        # collided (mariadb-install-db: "Could not remove temporary table").
        (root / "tmp").mkdir(mode=0o700)
        shutil.chown(root / "tmp", owner.pw_uid, owner.pw_gid)
        common = ["--no-defaults", f"--datadir={root / 'data'}", f"--user={owner.pw_name}",
                  f"--tmpdir={root / 'tmp'}"]  # fmt: skip
        _run([install, *common, "--auth-root-authentication-method=normal", "--skip-test-db"])
        port = free_tcp_port()
        process = subprocess.Popen(
            [server, *common, f"--port={port}", "--bind-address=127.0.0.1",
             f"--socket={root / 'mysqld.sock'}", f"--pid-file={root / 'mysqld.pid'}",
             f"--log-error={root / 'error.log'}", "--skip-name-resolve",
             "--innodb-buffer-pool-size=16M", f"--ssl-cert={root / 'server.crt'}",
             f"--ssl-key={root / 'server.key'}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            yield _create_login(root / "mysqld.sock", port, trusted_ca.pem, process)
        finally:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
    finally:
        shutil.rmtree(root, ignore_errors=True)


_SBIN = "/usr/sbin:/usr/local/sbin:/usr/bin:/bin"


def _owner() -> pwd.struct_passwd:
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    try:
        return pwd.getpwnam("mysql")
    except KeyError:
        require_service("running as root and no 'mysql' OS user to own a test server")


def _write_certificate(root: Path, ca: CertificateAuthority, owner: pwd.struct_passwd) -> None:
    server = issue_server_certificate(ca)
    for name, text in (("server.crt", server.cert_pem), ("server.key", server.key_pem)):
        fd = os.open(root / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.chown(root / name, owner.pw_uid, owner.pw_gid)


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).split())[-500:]
        require_service(f"{Path(command[0]).name} failed: {tail}")


def _create_login(
    socket_path: Path, port: int, ca_pem: str, process: subprocess.Popen[bytes]
) -> ServiceLogin:
    login = ServiceLogin(
        "127.0.0.1", port, "gwv_tls", "my-" + os.urandom(16).hex(), "gwv_tls_db", ca_pem
    )
    with _root(socket_path, process) as admin, admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{login.database}`")
        for host in ("127.0.0.1", "localhost", "::1"):
            cursor.execute("CREATE USER %s@%s IDENTIFIED BY %s", (login.user, host, login.password))
            cursor.execute(f"GRANT ALL ON `{login.database}`.* TO %s@%s", (login.user, host))
    return login


def _root(
    socket_path: Path, process: subprocess.Popen[bytes]
) -> pymysql.Connection[pymysql.cursors.Cursor]:
    """Root over the socket, once the server is up (polled: it starts in well under a second)."""
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            return pymysql.connect(user="root", password="", unix_socket=str(socket_path))
        except pymysql.MySQLError as e:
            if process.poll() is not None or time.monotonic() > deadline:
                require_service(f"the private MariaDB did not start: {e}")
            time.sleep(0.05)
