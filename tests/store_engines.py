"""The storage-engine dimension of the contract suite (design.md, "Storage engines").

Tests marked ``contract`` run once per engine: SQLite (the data dir's
vault.db) and PostgreSQL (a cluster vault on the session's private server,
``shared_postgres``).  Other tests see SQLite only.

Making a vault runs Argon2id at its production floor, so each engine keeps its
initialised vaults as session templates (``EngineVaults.template``) and a test
gets a copy.  SQLite copies the data dir.  PostgreSQL copies the database in
the server (``CREATE DATABASE ... TEMPLATE``, a file-level copy: no schema is
replayed), copies the data dir (keystore, binding, ``cluster.json``,
``store.pgpass``) and points the copy's ``cluster.json`` at the new database
and the copy's own password file.  The copy is dropped after the test.

``EngineVaults.sql`` reaches into a vault's database as someone with the
database's own rights would (the tamper matrix): on SQLite the file's writer,
on PostgreSQL the server's superuser.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import pytest
from psycopg import sql as pg_sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from agent_keys.gateway_identity import KeyType
from agent_keys.secret import Secret
from tests.conftest import RECOVERY_KEY, make_context
from tests.postgres_servers import PostgresServer
from tests.vault_sql import PostgresSql, SqliteSql, VaultSql
from vault.data_dir import DB_FILE
from vault.gateway import Gateway
from vault.store.locator import (
    STORE_PASSWORD_FILE,
    ClusterMembership,
    PostgresLocation,
    parse_store_url,
    read_membership,
    write_membership,
)

SqlBlock = contextlib.AbstractContextManager[VaultSql]
StoreEngineName = Literal["sqlite", "postgresql"]
STORE_ENGINES: tuple[StoreEngineName, ...] = ("sqlite", "postgresql")
CONTRACT_LOGIN = "gwv_contract"  # owns every template and copy on the shared server


class EngineVaults:
    """Vaults on one engine: session templates, and copies of them for tests."""

    engine: StoreEngineName

    def __init__(self, root: Path) -> None:
        self._root = root
        self._templates: dict[str, Path] = {}

    def template(self, name: str, make: Callable[[Path], None]) -> Path:
        """The session's template ``name``: a data dir ``make`` fills on first use."""
        if name not in self._templates:
            path = self._root / name / "data"
            path.parent.mkdir()
            make(path)
            self._templates[name] = path
        return self._templates[name]

    def initialized(self, key_type: KeyType) -> Path:
        """The template of a freshly initialised vault (gateway ``gw-test``) of ``key_type``."""
        return self.template(key_type, lambda path: self._initialize(path, key_type))

    def derived(self, name: str, base: Path, change: Callable[[Path], None]) -> Path:
        """A template made from a copy of ``base`` that ``change`` adds to."""

        def make(path: Path) -> None:
            self.copy(base, path)
            change(path)

        return self.template(name, make)

    def _initialize(self, path: Path, key_type: KeyType) -> None:
        raise NotImplementedError

    def copy(self, template: Path, target: Path) -> Path:
        """A copy of the vault ``template`` at ``target``, for this session."""
        raise NotImplementedError

    def discard(self, copy: Path) -> None:
        """Remove what ``copy`` left outside its data dir (a test's tmp_path holds the rest)."""

    def sql(self, data_dir: Path, *, attacker: bool = False) -> SqlBlock:
        """Raw SQL on the vault's database, committed on leaving the block.

        ``attacker``: as someone with the database's rights, with the
        append-only triggers out of the way (dropped from the SQLite file;
        on PostgreSQL a superuser's ``session_replication_role = replica``).
        A data dir without ``cluster.json`` is SQLite on either engine (a
        restore makes one).
        """
        if read_membership(data_dir) is None:
            return SqliteSql.opened(data_dir / DB_FILE, attacker=attacker)
        return self._shared_sql(data_dir, attacker=attacker)

    def _shared_sql(self, data_dir: Path, *, attacker: bool) -> SqlBlock:
        raise AssertionError(f"{data_dir} is a cluster vault, and these vaults are SQLite")

    def close(self) -> None:
        """Drop what the session made outside its directories."""


class SqliteVaults(EngineVaults):
    engine = "sqlite"

    def _initialize(self, path: Path, key_type: KeyType) -> None:
        Gateway.initialize(path, "gw-test", key_type, _recovery_key(), make_context()).close()

    def copy(self, template: Path, target: Path) -> Path:
        shutil.copytree(template, target)
        target.chmod(0o700)
        return target


class PostgresVaults(EngineVaults):
    """Cluster vaults of one login on ``server``, each in its own database."""

    engine = "postgresql"

    def __init__(self, server: PostgresServer, root: Path) -> None:
        super().__init__(root)
        self._server = server
        login = server.create_login(CONTRACT_LOGIN)
        self._password = Secret.from_text(login.password)
        self._login = login
        # Kept open for CREATE and DROP DATABASE: a login per copy is a SCRAM exchange.
        self._admin = server.admin()

    def _initialize(self, path: Path, key_type: KeyType) -> None:
        database = self._new_database(template=None)
        location = parse_store_url(
            make_conninfo(
                host=self._login.host, port=str(self._login.port), dbname=database,
                user=self._login.user, sslmode="verify-full",
                sslrootcert=str(self._server.ca_file),
            )
        )  # fmt: skip
        # Closed at once: CREATE DATABASE ... TEMPLATE refuses a database in use.
        Gateway.initialize(
            path, "gw-test", key_type, _recovery_key(), make_context(),
            shared_store=location, store_password=self._password,
        ).close()  # fmt: skip

    def copy(self, template: Path, target: Path) -> Path:
        database = self._new_database(template=_database_of(template))
        shutil.copytree(template, target)
        target.chmod(0o700)
        membership = _membership(target)
        params = conninfo_to_dict(membership.store.conninfo)
        params |= {"dbname": database, "passfile": str((target / STORE_PASSWORD_FILE).resolve())}
        store = PostgresLocation(make_conninfo(**{k: str(v) for k, v in params.items()}))
        write_membership(target, ClusterMembership(store, membership.member_id, membership.epoch))
        return target

    def discard(self, copy: Path) -> None:
        drop = pg_sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        self._admin.execute(drop.format(pg_sql.Identifier(_database_of(copy))))

    def _shared_sql(self, data_dir: Path, *, attacker: bool) -> SqlBlock:
        return PostgresSql.opened(self._server, _database_of(data_dir), attacker=attacker)

    def close(self) -> None:
        self._admin.close()
        self._server.drop_login(CONTRACT_LOGIN)

    def _new_database(self, template: str | None) -> str:
        name = f"gwv_vault_{os.urandom(6).hex()}"
        # FILE_COPY copies the template's files (a checkpoint, cheap with fsync off):
        # about 100 ms a copy here, against 130 ms for WAL_LOG, which logs every page.
        create = pg_sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE {} STRATEGY FILE_COPY").format(
            pg_sql.Identifier(name),
            pg_sql.Identifier(self._login.user),
            pg_sql.Identifier(template or "template1"),
        )
        self._admin.execute(create)
        return name


def _recovery_key() -> Secret:
    return Secret.from_text(RECOVERY_KEY)


def _membership(data_dir: Path) -> ClusterMembership:
    membership = read_membership(data_dir)
    assert membership is not None, f"{data_dir} is not a cluster vault"
    return membership


def _database_of(data_dir: Path) -> str:
    return str(conninfo_to_dict(_membership(data_dir).store.conninfo)["dbname"])


# -- fixtures ----------------------------------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A ``contract`` test runs once per storage engine, unless marked ``sqlite_only``
    (with its reason); ``engine_gap(ENGINE, reason=...)`` expects it to fail on
    ENGINE (strict: it fails once the gap is closed, so the mark goes)."""
    definition = metafunc.definition
    if (
        "store_engine" not in metafunc.fixturenames
        or definition.get_closest_marker("contract") is None
        or definition.get_closest_marker("sqlite_only") is not None
    ):
        return
    gaps = {mark.args[0]: mark.kwargs["reason"] for mark in definition.iter_markers("engine_gap")}
    engines = [
        pytest.param(engine, marks=pytest.mark.xfail(strict=True, reason=gaps[engine]))
        if engine in gaps
        else engine
        for engine in STORE_ENGINES
    ]
    metafunc.parametrize("store_engine", engines, indirect=True)


@pytest.fixture
def store_engine(request: pytest.FixtureRequest) -> StoreEngineName:
    """The engine of this test's vaults: each in turn for a ``contract`` test, else SQLite."""
    engine: StoreEngineName = getattr(request, "param", "sqlite")
    return engine


@pytest.fixture(scope="session")
def sqlite_vaults(tmp_path_factory: pytest.TempPathFactory) -> SqliteVaults:
    return SqliteVaults(tmp_path_factory.mktemp("sqlite-vaults"))


@pytest.fixture(scope="session")
def postgresql_vaults(
    shared_postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PostgresVaults]:
    vaults = PostgresVaults(shared_postgres, tmp_path_factory.mktemp("postgresql-vaults"))
    try:
        yield vaults
    finally:
        vaults.close()


@pytest.fixture
def vaults(store_engine: StoreEngineName, request: pytest.FixtureRequest) -> EngineVaults:
    """The session's vaults on this test's engine (PostgreSQL's are made on first use)."""
    engine_vaults: EngineVaults = request.getfixturevalue(f"{store_engine}_vaults")
    return engine_vaults


@pytest.fixture
def copy_vault(vaults: EngineVaults) -> Iterator[Callable[[Path, Path], Path]]:
    """copy_vault(template, target): this test's own copy of a template, gone after it."""
    made: list[Path] = []

    def copy(template: Path, target: Path) -> Path:
        made.append(vaults.copy(template, target))
        return target

    yield copy
    for copied in made:
        vaults.discard(copied)


@pytest.fixture
def member_dir(postgresql_vaults: PostgresVaults, tmp_path: Path) -> Iterator[Path]:
    """A fresh cluster member's vault (on the shared PostgreSQL store), for a test
    of what only a cluster has (members, leases): a ``contract`` test's SQLite
    half would have nothing to check."""
    path = postgresql_vaults.copy(postgresql_vaults.initialized("ec-p256"), tmp_path / "member")
    yield path
    postgresql_vaults.discard(path)
