"""The PostgreSQL servers the shared-store tests stand on: TLS, passwords, replication, failover.

These check the fixtures (tests.postgres_servers, tests.postgres_replication)
themselves, so a store test that fails over can trust that the failover it
sees is PostgreSQL's and not a fixture's accident.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.postgres_processes import postmaster_pid
from tests.postgres_replication import ReplicatedPair, start_primary_with_replica
from tests.postgres_servers import PostgresServer, StoreLogin, libpq_conninfo, write_passfile
from tests.tls_certificates import CertificateAuthority

pytestmark = pytest.mark.services


@pytest.fixture
def replicated_pair(trusted_ca: CertificateAuthority) -> Iterator[ReplicatedPair]:
    with start_primary_with_replica(trusted_ca) as pair:
        yield pair


def test_a_store_login_gets_verified_tls_and_its_own_database(
    fresh_store_login: StoreLogin,
) -> None:
    login = fresh_store_login.login
    assert login.password not in fresh_store_login.conninfo
    with psycopg.connect(fresh_store_login.conninfo, connect_timeout=10) as db:
        assert db.pgconn.ssl_in_use
        assert db.info.get_parameters()["sslmode"] == "verify-full"
        seen = db.execute(
            "SELECT current_user, current_database(), ssl FROM pg_stat_ssl"
            " WHERE pid = pg_backend_pid()"
        ).fetchone()
    assert seen == (login.user, login.database, True)


def test_a_certificate_from_another_ca_is_refused(
    fresh_store_login: StoreLogin, untrusted_ca: CertificateAuthority, tmp_path: Path
) -> None:
    other_ca = tmp_path / "other-ca.crt"
    other_ca.write_text(untrusted_ca.pem)
    login = fresh_store_login.login
    conninfo = libpq_conninfo(login, [login.port], fresh_store_login.passfile, other_ca)
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(conninfo, connect_timeout=10)


def test_a_wrong_password_is_refused(fresh_store_login: StoreLogin, tmp_path: Path) -> None:
    login = fresh_store_login.login
    wrong = dataclasses.replace(login, password="not-" + login.password)
    passfile = write_passfile(tmp_path, wrong, [wrong.port])
    conninfo = libpq_conninfo(wrong, [wrong.port], passfile, fresh_store_login.ca_file)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(conninfo, connect_timeout=10)


def test_a_database_made_from_a_template_has_its_tables(
    shared_postgres: PostgresServer, fresh_store_login: StoreLogin
) -> None:
    owner = fresh_store_login.login.user
    with shared_postgres.admin(owner) as template:
        template.execute("CREATE TABLE members (member_id text PRIMARY KEY)")
    copy = shared_postgres.create_database(owner, template=owner, name=f"{owner}_copy")
    with shared_postgres.admin(copy) as db:
        assert db.execute("SELECT count(*) FROM members").fetchone() == (0,)


def test_a_dropped_login_leaves_no_role_database_or_session(
    shared_postgres: PostgresServer,
) -> None:
    login = shared_postgres.create_login(f"gwv_store_{os.urandom(5).hex()}")
    with psycopg.connect(
        host=login.host, port=login.port, user=login.user, password=login.password,
        dbname=login.database, sslmode="require", connect_timeout=10,
    ) as held:  # fmt: skip
        shared_postgres.drop_login(login.user)
        with pytest.raises(psycopg.OperationalError):
            held.execute("SELECT 1")
    with shared_postgres.admin() as db:
        left = db.execute(
            "SELECT (SELECT count(*) FROM pg_roles WHERE rolname = %s),"
            " (SELECT count(*) FROM pg_database WHERE datname = %s)",
            (login.user, login.database),
        ).fetchone()
    assert left == (0, 0)


def test_a_row_committed_on_the_primary_is_replayed_on_the_standby(
    replicated_pair: ReplicatedPair,
) -> None:
    primary, standby = replicated_pair.primary, replicated_pair.standby
    login = primary.create_login("gwv_store")
    with psycopg.connect(replicated_pair.multi_host_conninfo(login), connect_timeout=10) as db:
        assert db.info.port == primary.port
        db.execute("CREATE TABLE leases (name text PRIMARY KEY, token bigint)")
        db.execute("INSERT INTO leases VALUES ('housekeeper', 1)")
    replicated_pair.wait_until_replayed()
    assert standby.is_in_recovery() and not primary.is_in_recovery()
    with standby.admin(login.database) as replica:
        assert replica.execute("SELECT name, token FROM leases").fetchall() == [("housekeeper", 1)]
    # read-write passes over a live standby named first, not only over a dead host.
    passfile = write_passfile(replicated_pair.client_dir, login, [standby.port, primary.port])
    standby_first = libpq_conninfo(login, [standby.port, primary.port], passfile,
                                   primary.ca_file, target_session_attrs="read-write")  # fmt: skip
    with psycopg.connect(standby_first, connect_timeout=10) as db:
        assert db.info.port == primary.port


def test_after_the_primary_crashes_the_conninfo_reaches_the_promoted_standby(
    replicated_pair: ReplicatedPair,
) -> None:
    primary, standby = replicated_pair.primary, replicated_pair.standby
    login = primary.create_login("gwv_store")
    conninfo = replicated_pair.multi_host_conninfo(login)
    with psycopg.connect(conninfo, connect_timeout=10) as db:
        db.execute("CREATE TABLE leases (name text PRIMARY KEY, token bigint)")
        db.execute("INSERT INTO leases VALUES ('housekeeper', 1)")
    replicated_pair.wait_until_replayed()
    primary.kill()
    assert postmaster_pid(primary.data) is None
    standby.promote()
    assert not standby.is_in_recovery()
    with psycopg.connect(conninfo, connect_timeout=10) as db:
        assert db.info.port == standby.port
        assert db.pgconn.ssl_in_use
        db.execute("UPDATE leases SET token = token + 1")
        assert db.execute("SELECT name, token FROM leases").fetchall() == [("housekeeper", 2)]
