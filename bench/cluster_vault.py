"""A gateway cluster for the benchmarks: members sharing one private, durable PostgreSQL.

The server is the tests' own ``PostgresServer`` (initdb and pg_ctl as the
``postgres`` OS user, scram-sha-256, TLS from a CA made here, a free loopback
port), with fsync on: the figures are of durable writes, as SQLite's are
(``synchronous = FULL``).  Member 1 is made by ``gwvault init --store`` and
the others by ``gwvault cluster join``, as an operator makes them; the
store's password goes to the CLI in a 0600 file, never in argv.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from bench.served import Vault, bench_directory, gwvault

if TYPE_CHECKING:  # the tests' server helpers are imported when a cluster is made
    from tests.postgres_servers import PostgresServer
    from tests.service_fixtures import ServiceLogin

MEMBERS = 3
LOGIN = "gwv_bench"


@dataclass(frozen=True)
class Cluster:
    """The members' vaults (member 1 first), each its own data dir, and their one store."""

    members: tuple[Vault, ...]
    postgres: PostgresServer

    def postgres_pid(self) -> int:
        """The postmaster's pid: the server's CPU is that of its process tree."""
        from tests.postgres_processes import postmaster_pid

        pid = postmaster_pid(self.postgres.data)
        if pid is None:
            raise RuntimeError(f"{self.postgres} is not running")
        return pid


@contextlib.contextmanager
def fresh_cluster(members: int = MEMBERS) -> Iterator[Cluster]:
    """A cluster vault of ``members`` members on a new PostgreSQL server; all removed after.

    Raises ``RuntimeError`` where no PostgreSQL server can be started.
    """
    from tests.postgres_processes import write_owned

    with _durable_postgres() as server, bench_directory() as (root, key_file):
        login = server.create_login(LOGIN)
        password_file = write_owned(root / "store-password", login.password)
        store = ["--store", store_url(login, server.ca_file)]
        store += ["--store-password-file", str(password_file), "--recovery-key-file", str(key_file)]
        vaults = [Vault(root / f"member-{n}", key_file) for n in range(1, members + 1)]
        first, *others = vaults
        gwvault(first.data_dir, "init", "--name", "bench", *store, "--member-name", "member-1")
        for n, vault in enumerate(others, start=2):
            gwvault(vault.data_dir, "cluster", "join", *store, "--name", f"member-{n}")
        yield Cluster(tuple(vaults), server)


def store_url(login: ServiceLogin, ca_file: Path) -> str:
    """``--store`` for ``login``: TLS verified against ``ca_file``, no password in it."""
    query = urlencode({"sslmode": "verify-full", "sslrootcert": str(ca_file)}, quote_via=quote)
    return f"postgresql://{login.user}@{login.host}:{login.port}/{login.database}?{query}"


@contextlib.contextmanager
def _durable_postgres() -> Iterator[PostgresServer]:
    import pytest  # the server tools report a missing PostgreSQL as a test outcome

    from tests.postgres_servers import PostgresServer
    from tests.tls_certificates import make_ca

    try:
        server = PostgresServer.create(make_ca("gwvault bench CA"), durable=True)
    except (pytest.skip.Exception, pytest.fail.Exception) as missing:
        raise RuntimeError(f"the cluster benchmark needs PostgreSQL: {missing.msg}") from None
    with server:
        yield server
