"""Private PostgreSQL servers: one cluster for the session, a fresh login per test.

Each ``PostgresServer`` is a throw-away cluster on a free 127.0.0.1 port that
checks passwords (scram-sha-256; the machine's own cluster trusts local logins,
so a wrong password would pass there) and offers TLS with a certificate from
the tests' CA (``trusted_ca``).  It lives in /tmp/gwvault-pg-*, not in pytest's
tmp_path, whose 0700 root-owned parent the ``postgres`` OS user cannot enter.

No password reaches a command line (``ps`` shows those to everyone) or the
server: the superuser's goes to initdb in a 0600 file, a login's is sent as a
SCRAM verifier computed here, and clients read theirs from a passfile.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import TupleRow

from agent_keys.secret import Secret
from tests.postgres_processes import (
    PostgresToolError,
    cluster_owner,
    kill_postmaster,
    newest_postgres_bin_dir,
    postmaster_pid,
    run_as,
    write_owned,
)
from tests.service_fixtures import ServiceLogin, free_tcp_port, require_service
from tests.tls_certificates import (
    CertificateAuthority,
    ServerCertificate,
    issue_server_certificate,
)

SUPERUSER = "gwv_admin"
LOOPBACK = "127.0.0.1"
START_SECONDS = "30"
MD5_LOGIN = "gwv_md5"  # the connector tests' impersonated login (see shared_postgres)


class PostgresServer:
    """A private cluster, made by ``create`` (a standby: tests.postgres_replication)
    and removed with its directory by ``close`` (also on leaving a ``with`` block).

    Its settings go to the postmaster as ``-c`` options at each ``start``, so a
    standby copied from a primary's files listens on its own port.
    """

    def __init__(
        self, root: Path, superuser_password: Secret, ca_pem: str, settings: Mapping[str, str]
    ) -> None:
        self.root, self.data, self.log = root, root / "data", root / "server.log"
        self.port = free_tcp_port()
        self.superuser_password = superuser_password
        self.ca_pem = ca_pem
        self.settings = dict(settings)
        self.owner = cluster_owner()
        self.bin_dir = newest_postgres_bin_dir()
        (root / "sockets").mkdir()
        shutil.chown(root / "sockets", self.owner.pw_uid, self.owner.pw_gid)
        self.ca_file = write_owned(root / "ca.crt", ca_pem, self.owner)

    @classmethod
    def create(
        cls,
        ca: CertificateAuthority,
        *,
        durable: bool = False,
        settings: Mapping[str, str] | None = None,
        hba_lines: Iterable[str] = (),
    ) -> PostgresServer:
        """initdb and start a cluster; ``durable`` keeps fsync on (off saves seconds in CI).

        ``settings`` are extra server settings; ``hba_lines`` go before the
        default scram-sha-256 lines of pg_hba.conf.  Skips (or fails, where
        services are required) when a server tool fails.
        """
        newest_postgres_bin_dir()  # skips before anything is made where there is none
        all_settings = {"fsync": "on" if durable else "off"} | dict(settings or {})
        server = cls(new_cluster_root(), _new_password("su-"), ca.pem, all_settings)
        with server.closed_on_failure():
            server._initdb()
            server._install_certificate(issue_server_certificate(ca))
            hba = server.data / "pg_hba.conf"
            hba.write_text("".join(f"{line}\n" for line in hba_lines) + hba.read_text())
            server.start()
        return server

    def _initdb(self) -> None:
        password = self.superuser_password.reveal_text()
        pwfile = write_owned(self.root / "pwfile", password, self.owner)  # never on a command line
        self.run_tool("initdb", "-D", self.data, "-U", SUPERUSER, "--auth=scram-sha-256",
                      f"--pwfile={pwfile}", "-E", "UTF8", "--no-locale", "--no-sync")  # fmt: skip
        pwfile.unlink()

    def _install_certificate(self, certificate: ServerCertificate) -> None:
        for name, pem in (
            ("server.crt", certificate.cert_pem),
            ("server.key", certificate.key_pem),
        ):
            write_owned(self.data / name, pem, self.owner)  # 0600, or postgres refuses the key

    def run_tool(self, tool: str, *args: str | Path, env: Mapping[str, str] | None = None) -> None:
        """Run a server tool from this cluster's PostgreSQL as its owner (PostgresToolError)."""
        run_as(self.owner, self.root, self.bin_dir / tool, *args, env=env)

    def closed_on_failure(self) -> contextlib.AbstractContextManager[None]:
        """A ``with`` block that closes this server if setting it up fails, and skips
        (or fails, where services are required) when a server tool was what failed."""
        return _closed_on_failure(self)

    def start(self) -> None:
        """Start the postmaster and wait until it accepts connections (after a crash: recovers)."""
        base = {
            "listen_addresses": LOOPBACK, "port": str(self.port),
            "unix_socket_directories": str(self.root / "sockets"), "ssl": "on",
            "ssl_cert_file": "server.crt", "ssl_key_file": "server.key",
        }  # fmt: skip
        options = " ".join(f"-c {name}={value}" for name, value in (base | self.settings).items())
        try:
            self.run_tool("pg_ctl", "start", "-w", "-t", START_SECONDS, "-D", self.data,
                          "-l", self.log, "-o", options)  # fmt: skip
        except PostgresToolError as failed:
            # pg_ctl says only "examine the log output", and close() removes the log.
            log = " ".join(self.log.read_text().split())[-500:] if self.log.exists() else ""
            raise PostgresToolError(f"{failed}; server log: {log}") from None

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """Stop the postmaster with pg_ctl's shutdown ``mode`` and wait until it is gone."""
        self.run_tool("pg_ctl", "stop", "-w", "-t", START_SECONDS, "-D", self.data, "-m", mode)

    def kill(self) -> None:
        """Crash the server: SIGKILL its postmaster and every backend at once."""
        if (pid := postmaster_pid(self.data)) is not None:
            kill_postmaster(pid)

    def promote(self) -> None:
        """Promote a standby to a primary and wait until it accepts writes."""
        self.run_tool("pg_ctl", "promote", "-w", "-t", START_SECONDS, "-D", self.data)

    def is_in_recovery(self) -> bool:
        """Whether the server is a standby (replaying WAL) rather than a writable primary."""
        with self.admin() as db:
            row = db.execute("SELECT pg_is_in_recovery()").fetchone()
        return row is not None and bool(row[0])

    def admin(self, dbname: str = "postgres") -> psycopg.Connection[TupleRow]:
        """A superuser connection in autocommit (plain TCP: it is the tests' own plumbing)."""
        return psycopg.connect(
            host=LOOPBACK, port=self.port, dbname=dbname, user=SUPERUSER,
            password=self.superuser_password.reveal_text(), autocommit=True,
            sslmode="disable", connect_timeout=10,
        )  # fmt: skip

    def create_login(
        self,
        name: str,
        *,
        database: str | None = None,
        password_encryption: str = "scram-sha-256",
        replication: bool = False,
    ) -> ServiceLogin:
        """A role ``name`` with a random password that owns a fresh database of that
        name (or named ``database``).

        A ``replication`` role gets no database: its logins name the
        pseudo-database ``replication`` (also what its passfile line matches).
        """
        password = _new_password("pg-")
        with self.admin() as db:
            verifier = db.pgconn.encrypt_password(
                password.reveal(), name.encode(), password_encryption.encode()
            )
            role = sql.SQL("REPLICATION LOGIN" if replication else "LOGIN")
            db.execute(
                sql.SQL("CREATE ROLE {} {} PASSWORD {}").format(
                    sql.Identifier(name), role, sql.Literal(verifier.decode())
                )
            )
        owned = "replication" if replication else self.create_database(name, name=database)
        return ServiceLogin(LOOPBACK, self.port, name, password.reveal_text(), owned, self.ca_pem)

    def create_database(
        self, owner: str, template: str | None = None, *, name: str | None = None
    ) -> str:
        """Create a database (named ``name``, else as its ``owner``), from ``template`` if
        given (it must have no open connection); return its name."""
        database = name or owner
        create = sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE {}").format(
            sql.Identifier(database), sql.Identifier(owner), sql.Identifier(template or "template1")
        )
        with self.admin() as db:
            db.execute(create)
        return database

    def drop_login(self, name: str) -> None:
        """Drop a role and every database it owns, ending their sessions first."""
        with self.admin() as db:
            owned = db.execute(
                "SELECT datname FROM pg_database JOIN pg_roles ON datdba = pg_roles.oid"
                " WHERE rolname = %s",
                (name,),
            ).fetchall()
            # FORCE ends the sessions in each database; this ends the role's elsewhere.
            db.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = %s",
                (name,),
            )
            for (database,) in owned:
                drop = sql.SQL("DROP DATABASE {} WITH (FORCE)")
                db.execute(drop.format(sql.Identifier(database)))
            db.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))

    def connections_logged(self, user: str) -> list[str]:
        """Log lines of login attempts by ``user`` that reached authentication
        (needs the setting ``log_connections=on``)."""
        marks = (f"user={user} ", f'user "{user}"', f'identity="{user}"')
        return [line for line in self.log.read_text().splitlines() if any(m in line for m in marks)]

    def close(self) -> None:
        """Stop the server if it runs (kill it if it will not stop), then remove its files."""
        try:
            if postmaster_pid(self.data) is not None:
                try:
                    self.stop("fast")
                except PostgresToolError:
                    self.kill()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresServer(port={self.port}, root={str(self.root)!r})"


@contextlib.contextmanager
def _closed_on_failure(server: PostgresServer) -> Iterator[None]:
    try:
        yield
    except PostgresToolError as failed:
        server.close()
        require_service(str(failed))
    except BaseException:
        server.close()
        raise


def new_cluster_root() -> Path:
    """A fresh /tmp/gwvault-pg-* directory owned by the cluster owner."""
    root = Path(tempfile.mkdtemp(prefix="gwvault-pg-", dir="/tmp"))
    owner = cluster_owner()
    shutil.chown(root, owner.pw_uid, owner.pw_gid)
    return root


def _new_password(prefix: str) -> Secret:
    return Secret.from_text(prefix + os.urandom(16).hex())


@dataclass(frozen=True)
class StoreLogin:
    """A login on its own database, its password in a 0600 passfile, never in a conninfo."""

    login: ServiceLogin
    passfile: Path
    ca_file: Path

    @property
    def conninfo(self) -> str:
        """A libpq conninfo for this login that verifies the server against the tests' CA."""
        return libpq_conninfo(self.login, [self.login.port], self.passfile, self.ca_file)


def libpq_conninfo(
    login: ServiceLogin, ports: list[int], passfile: Path, ca_file: Path, **extra: str
) -> str:
    """A libpq conninfo for ``login`` on 127.0.0.1 at ``ports`` (tried in order),
    TLS verify-full against ``ca_file``, the password read from ``passfile``."""
    return make_conninfo(
        host=",".join([login.host] * len(ports)), port=",".join(str(p) for p in ports),
        dbname=login.database, user=login.user, **extra, sslmode="verify-full",
        sslrootcert=str(ca_file), passfile=str(passfile),
    )  # fmt: skip


def passfile_text(login: ServiceLogin, ports: list[int]) -> str:
    """Lines of a libpq password file for ``login`` at each port (``\\`` and ``:`` escaped)."""

    def field(value: str) -> str:
        return value.replace("\\", "\\\\").replace(":", "\\:")

    fields = (field(login.database), field(login.user), field(login.password))
    return "\n".join(":".join((login.host, str(port), *fields)) for port in ports)


def write_passfile(directory: Path, login: ServiceLogin, ports: list[int]) -> Path:
    """A new 0600 passfile in ``directory`` for ``login`` at ``ports``."""
    fd, name = tempfile.mkstemp(prefix=f"{login.user}-", suffix=".pgpass", dir=directory)
    with os.fdopen(fd, "w") as file:  # mkstemp made it 0600, as libpq insists
        file.write(passfile_text(login, ports) + "\n")
    return Path(name)


@pytest.fixture(scope="session")
def shared_postgres(trusted_ca: CertificateAuthority) -> Iterator[PostgresServer]:
    """The session's one private cluster, stopped and removed at the end.

    It also serves the connector tests: it logs every connection (so a test
    can tell that a login attempt never reached it), and it asks ``gwv_md5``
    for an MD5 response, as an impersonator would.
    """
    settings = {"log_connections": "on"}
    md5_line = f"host all {MD5_LOGIN} {LOOPBACK}/32 md5"
    with PostgresServer.create(trusted_ca, settings=settings, hba_lines=[md5_line]) as server:
        yield server


@pytest.fixture
def fresh_store_login(shared_postgres: PostgresServer, tmp_path: Path) -> Iterator[StoreLogin]:
    """A role owning its own database on the shared cluster, dropped after the test."""
    name = f"gwv_store_{os.urandom(5).hex()}"
    login = shared_postgres.create_login(name)
    try:
        passfile = write_passfile(tmp_path, login, [login.port])
        yield StoreLogin(login, passfile, shared_postgres.ca_file)
    finally:
        shared_postgres.drop_login(name)


@pytest.fixture(scope="session")
def private_postgres(shared_postgres: PostgresServer) -> ServiceLogin:
    """A login (scram-sha-256) on the shared cluster, with the CA of its TLS."""
    # Its database is not named after it: libpq's default database must be missing.
    return shared_postgres.create_login("gwv_tester", database="gwv_tester_db")


@pytest.fixture(scope="session")
def postgres_md5_user(shared_postgres: PostgresServer) -> ServiceLogin:
    """A login whose password the cluster checks with MD5 (as an impersonator would ask)."""
    return shared_postgres.create_login(MD5_LOGIN, password_encryption="md5")
