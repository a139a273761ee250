"""Logins the server refuses for a reason other than a wrong password, on real
servers: each must come out as its own reason code, and a successful test
reports when the server says the login expires.

MariaDB: the machine's server (root with no password), users unique to the
test run.  PostgreSQL: the session's private cluster, which checks passwords.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator

import pytest
from psycopg import sql

from tests.postgres_servers import PostgresServer
from tests.service_fixtures import ServiceLogin, mariadb_root
from tests.vault.connectors.results import login
from vault.connectors.connection import ConnectionTestResult
from vault.connectors.postgresql import classify

pytestmark = pytest.mark.services

_HOSTS = ("127.0.0.1", "localhost")  # MariaDB may take 127.0.0.1 for localhost


@contextlib.contextmanager
def _mariadb_login(options: str = "", grants: tuple[str, ...] = ()) -> Iterator[ServiceLogin]:
    """A MariaDB user of this run, created with ``options`` (CREATE USER's tail)."""
    user = f"gwv_state_{os.getpid()}_{os.urandom(3).hex()}"
    password = "gwv-" + os.urandom(12).hex()
    with mariadb_root() as root, root.cursor() as cursor:
        cursor.execute("SELECT @@port")
        port = int(cursor.fetchone()[0])  # type: ignore[index]
        for host in _HOSTS:
            cursor.execute(f"CREATE USER %s@%s IDENTIFIED BY %s {options}", (user, host, password))
            for grant in grants:
                cursor.execute(f"GRANT {grant} TO %s@%s", (user, host))
    try:
        yield ServiceLogin("127.0.0.1", port, user, password, "")
    finally:
        with mariadb_root() as root, root.cursor() as cursor:
            for host in _HOSTS:
                cursor.execute("DROP USER IF EXISTS %s@%s", (user, host))


def _as_root(statement: str, user: str) -> None:
    with mariadb_root() as root, root.cursor() as cursor:
        for host in _HOSTS:
            cursor.execute(statement, (user, host))
        cursor.execute("FLUSH PRIVILEGES")


def _mariadb(
    db: ServiceLogin, database: str | None = None, password: str | None = None
) -> ConnectionTestResult:
    return login("mysql", f"{db.host}:{db.port}", db.user, password or db.password, database)


def test_mariadb_password_past_its_expire_interval_is_password_expired() -> None:
    with _mariadb_login("PASSWORD EXPIRE INTERVAL 1 DAY") as db:
        assert _mariadb(db).reason == "ok"
        # Changed two days ago, as the server sees it: the interval has run out.
        _as_root(
            "UPDATE mysql.global_priv SET Priv = JSON_SET(Priv, '$.password_last_changed',"
            " UNIX_TIMESTAMP() - 2 * 86400) WHERE User = %s AND Host = %s",
            db.user,
        )
        result = _mariadb(db)
    assert result.reason == "password_expired", result.detail


def test_mariadb_expired_password_is_password_expired() -> None:
    with _mariadb_login() as db:
        _as_root("ALTER USER %s@%s PASSWORD EXPIRE", db.user)
        result = _mariadb(db)
    assert result.reason == "password_expired", result.detail


def test_mariadb_locked_account_is_account_locked_even_with_the_right_password() -> None:
    with _mariadb_login("ACCOUNT LOCK") as db:
        locked, wrong = _mariadb(db), _mariadb(db, password="not-" + db.password)
    assert locked.reason == "account_locked", locked.detail
    assert "locked" in locked.detail
    # A wrong password on a locked account says no more than a wrong password.
    assert wrong.reason in ("account_locked", "auth_failed")


def test_mariadb_wrong_password_is_auth_failed() -> None:
    with _mariadb_login() as db:
        result = _mariadb(db, password="not-" + db.password)
    assert result.reason == "auth_failed", result.detail


def test_mariadb_missing_database_is_database_missing() -> None:
    # A grant on the name pattern: without one, MariaDB says "access denied" instead.
    with _mariadb_login() as db:
        _as_root(f"GRANT ALL ON `{db.user}\\_%%`.* TO %s@%s", db.user)
        result = _mariadb(db, database=f"{db.user}_missing")
    assert result.reason == "database_missing", result.detail


def test_mariadb_expiry_is_reported_to_a_login_that_may_read_it() -> None:
    grants = ("SELECT ON mysql.global_priv",)
    with (
        _mariadb_login("PASSWORD EXPIRE INTERVAL 3 DAY", grants) as seeing,
        _mariadb_login() as blind,
    ):
        sees, cannot = _mariadb(seeing), _mariadb(blind)
    assert sees.ok and cannot.ok
    assert sees.server_expires_at is not None
    expires = datetime.datetime.fromisoformat(sees.server_expires_at)
    in_three_days = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=3)
    assert abs(expires - in_three_days) < datetime.timedelta(minutes=5)
    assert cannot.server_expires_at is None


@contextlib.contextmanager
def _postgres_role(server: PostgresServer, valid_until: str | None) -> Iterator[ServiceLogin]:
    name = f"gwv_state_{os.getpid()}_{os.urandom(3).hex()}"
    created = server.create_login(name)
    try:
        if valid_until is not None:
            with server.admin() as db:
                db.execute(
                    sql.SQL("ALTER ROLE {} VALID UNTIL {}").format(
                        sql.Identifier(name), sql.Literal(valid_until)
                    )
                )
        yield created
    finally:
        server.drop_login(name)


def _postgres(pg: ServiceLogin, password: str | None = None) -> ConnectionTestResult:
    return login(
        "postgresql", f"{pg.host}:{pg.port}", pg.user, password or pg.password, pg.database
    )


def test_postgres_role_valid_until_in_the_future_reports_its_expiry(
    shared_postgres: PostgresServer,
) -> None:
    with _postgres_role(shared_postgres, "2099-01-02 03:04:05+00") as pg:
        result = _postgres(pg)
    assert result.ok, result.detail
    assert result.server_expires_at == "2099-01-02T03:04:05+00:00"


def test_postgres_role_without_valid_until_never_expires(shared_postgres: PostgresServer) -> None:
    with _postgres_role(shared_postgres, "infinity") as pg:
        result = _postgres(pg)
    assert result.ok and result.server_expires_at is None


def test_postgres_role_past_valid_until_looks_like_a_wrong_password(
    shared_postgres: PostgresServer,
) -> None:
    # PostgreSQL tells the client no more than for a wrong password: the
    # connector says auth_failed, and only the status history can tell
    # (tests/vault/health: password_expired after an ok test saw the date).
    with _postgres_role(shared_postgres, "2001-01-01 00:00:00+00") as pg:
        expired, wrong = _postgres(pg), _postgres(pg, password="not-" + pg.password)
    assert expired.reason == wrong.reason == "auth_failed"


def test_postgres_role_that_may_not_log_in_is_account_locked(
    shared_postgres: PostgresServer,
) -> None:
    with _postgres_role(shared_postgres, None) as pg:
        with shared_postgres.admin() as db:
            db.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(pg.user)))
        result = _postgres(pg)
    assert result.reason == "account_locked", result.detail


def test_a_missing_role_named_by_the_server_is_auth_failed() -> None:
    # What trust or peer authentication answers; never "database missing".
    said = 'connection failed: FATAL:  role "gwv_nobody" does not exist'
    assert classify(Exception(said)) == "auth_failed"
    assert classify(Exception('FATAL:  database "gwv_nodb" does not exist')) == "database_missing"
