"""A primary PostgreSQL server with a streaming standby, for failover tests.

The standby is a ``pg_basebackup -R`` of the primary on its own port.  It
streams over TLS verified against the tests' CA, as the replication role
``gwv_replicator``, whose password it reads from a passfile in its own
directory (never argv, never postgresql.auto.conf: ``-R`` records the
passfile's path, not the password).  A physical slot keeps the WAL the standby
has not received yet.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.postgres_processes import write_owned
from tests.postgres_servers import (
    LOOPBACK,
    PostgresServer,
    libpq_conninfo,
    new_cluster_root,
    passfile_text,
    write_passfile,
)
from tests.service_fixtures import ServiceLogin
from tests.tls_certificates import CertificateAuthority

REPLICATOR = "gwv_replicator"
SLOT = "gwvault_standby"
WAIT_SECONDS = 30
POLL_SECONDS = 0.02


@dataclass(frozen=True)
class ReplicatedPair:
    """A primary, its streaming standby, and a directory for the clients' passfiles."""

    primary: PostgresServer
    standby: PostgresServer
    client_dir: Path

    def multi_host_conninfo(self, login: ServiceLogin) -> str:
        """A libpq conninfo naming both servers that connects to whichever one takes writes
        (target_session_attrs=read-write), TLS verify-full, the password in a new passfile."""
        ports = [self.primary.port, self.standby.port]
        passfile = write_passfile(self.client_dir, login, ports)
        return libpq_conninfo(
            login, ports, passfile, self.primary.ca_file, target_session_attrs="read-write"
        )

    def wait_until_replayed(self) -> None:
        """Wait until the standby has replayed all the primary has written so far."""
        with self.primary.admin() as primary:
            row = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        with self.standby.admin() as standby:
            _wait_for(
                lambda: _true(standby.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (row[0],)
                ).fetchone()),
                "the standby to replay the primary's WAL",
            )  # fmt: skip


@contextlib.contextmanager
def start_primary_with_replica(ca: CertificateAuthority) -> Iterator[ReplicatedPair]:
    """Start a primary and a standby streaming from it; stop and remove both at the end."""
    replication_line = f"host replication {REPLICATOR} {LOOPBACK}/32 scram-sha-256"
    settings = {"wal_level": "replica", "max_wal_senders": "4", "max_replication_slots": "4"}
    with (
        PostgresServer.create(ca, settings=settings, hba_lines=[replication_line]) as primary,
        start_standby(primary, primary.create_login(REPLICATOR, replication=True)) as standby,
        tempfile.TemporaryDirectory(prefix="gwvault-pg-clients-") as client_dir,
    ):
        with primary.admin() as db:
            _wait_for(
                lambda: _true(db.execute(
                    "SELECT count(*) > 0 FROM pg_stat_replication WHERE state = 'streaming'"
                ).fetchone()),
                "the standby to stream from the primary",
            )  # fmt: skip
        yield ReplicatedPair(primary, standby, Path(client_dir))


def start_standby(primary: PostgresServer, replicator: ServiceLogin) -> PostgresServer:
    """A standby of ``primary`` made with ``pg_basebackup -R``, started on its own port."""
    standby = PostgresServer(
        new_cluster_root(), primary.superuser_password, primary.ca_pem, primary.settings
    )
    with standby.closed_on_failure():
        passfile = standby.root / "replication.pgpass"
        write_owned(passfile, passfile_text(replicator, [primary.port]), standby.owner)
        standby.run_tool(
            "pg_basebackup", "-D", standby.data, "-h", LOOPBACK, "-p", str(primary.port),
            "-U", replicator.user, "-w", "-R", "-X", "stream", "-c", "fast", "--no-sync",
            "-C", "-S", SLOT,
            env={"PGPASSFILE": str(passfile), "PGSSLMODE": "verify-full",
                 "PGSSLROOTCERT": str(standby.ca_file)},
        )  # fmt: skip
        standby.start()
    return standby


def _true(row: tuple[object, ...] | None) -> bool:
    return row is not None and row[0] is True


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {WAIT_SECONDS} s for {what}")
        time.sleep(POLL_SECONDS)
