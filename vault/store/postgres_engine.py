"""The PostgreSQL engine: a gateway cluster's shared vault database, through psycopg 3.

This is the only module that imports psycopg for the store (the data-source
tester in ``vault.connectors.postgresql`` is another matter).  It gives
``VaultStore`` the semantics the SQLite engine gives:

- A write takes the database's one write lock first (``SELECT ... FOR UPDATE``
  on the ``write_lock`` row), so writers from every member follow one another
  as SQLite's ``BEGIN IMMEDIATE`` makes them: a change reads what the last one
  committed, and the audit chain's next entry follows the head it read.  The
  lock is a row lock, held by the transaction and released by its end, never
  a session advisory lock: it works through a transaction-mode pooler and
  dies with the transaction when a member or the primary is lost.
- A read takes one snapshot (``REPEATABLE READ``) for every query in it.
- Statements use SQLite's ``?`` placeholders; they are turned into psycopg's
  here, once per distinct statement.
- Every psycopg error leaves as ``ConflictError`` (a constraint refused the
  change) or ``StorageError`` (anything else), chained, and never carrying the
  connection string's secrets: the password is in a libpq password file or
  service file, never in the conninfo this process holds
  (``vault.store.locator``).

A connection lost between transactions (a failover, a restarted server) is
reconnected at the next transaction; one lost inside a transaction fails that
transaction, and the caller sees ``StorageError`` (a web request answers 503).
So is a connection to a server that stopped taking writes while it stayed up
(a hot standby, or an old primary fenced read-only at a switchover): its
reads may be stale and its writes fail, and a long-lived process would keep
it for ever.  The server says so in the parameters it reports with every
answer (``in_hot_standby``, ``default_transaction_read_only``; PostgreSQL 14
and later), so checking costs no round trip; libpq, given
``target_session_attrs=read-write``, then connects to the writable server.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from agent_keys.errors import ConflictError, StorageError
from vault.store.engine import BeforeCommit

_CONNECT_TIMEOUT_S = 10
# Session settings, per connection.  lock_timeout matches SQLite's busy
# timeout.  idle_in_transaction_session_timeout: a member that stops (paused,
# partitioned) while it holds the write lock must not stop the whole cluster;
# the server ends its session and the lock with it.
_SESSION_SETTINGS = (
    "SET lock_timeout = '10s'",
    "SET statement_timeout = '60s'",
    "SET idle_in_transaction_session_timeout = '30s'",
)
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


class PostgresEngine:
    """A ``StoreEngine`` over one PostgreSQL database."""

    kind = "postgresql"

    def __init__(self, conninfo: str, location: str) -> None:
        self._conninfo = conninfo
        self._location = location
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._depth = 0  # nested write()/reading() blocks joined to the open transaction
        self._wrote = False
        self._locked = False  # this transaction holds the write lock
        self._reconnected = False  # a later connection replaced the first one
        self.before_commit = BeforeCommit()
        self._connect()

    @property
    def location(self) -> str:
        return self._location

    # -- connection -----------------------------------------------------------------

    def _connect(self) -> None:
        with self._translated():
            conn = psycopg.connect(
                self._conninfo,
                autocommit=True,
                connect_timeout=_CONNECT_TIMEOUT_S,
                application_name="gwvault",
            )
            for statement in _SESSION_SETTINGS:
                conn.execute(statement)
        self._conn = conn

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        """The open connection; a lost one, or one to a server that no longer
        takes writes, is replaced when no transaction is open."""
        conn = self._conn
        if not _usable(conn):
            if self._depth:
                raise StorageError(
                    f"the connection to {self._location} was lost, or its server stopped"
                    " taking writes, mid-transaction"
                )
            self.close()
            self._connect()
            self._reconnected = True
            conn = self._conn
        if conn is None:
            raise StorageError(f"cannot connect to {self._location}")
        if not _takes_writes(conn):  # reached without target_session_attrs=read-write
            raise StorageError(f"{self._location} takes no writes now (a standby, or read-only)")
        return conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def is_opened_file(self) -> bool:
        """Whether the first connection is still the one in use, and usable.
        A new one may reach another server (a promoted standby, which lacks
        what an asynchronous standby had not received), so a long-lived
        process opens the vault again before its next use, with every check,
        and drops the facts it kept (``vault.kept_gateways``)."""
        return not self._reconnected and _usable(self._conn)

    def use_write_ahead_log(self) -> None:
        """PostgreSQL always logs ahead; nothing to set."""

    def create_schema(
        self,
        statements: tuple[str, ...],
        version: int | None,
        fill: Callable[[], object] | None = None,
    ) -> None:
        """Make ``statements`` in one transaction in an empty database, with the
        ``schema_version`` setting ``version``; a database that already holds a
        vault (or anything named like one of its tables) is refused, never adopted.

        ``fill`` runs in the same transaction, after the statements: a copy of
        another vault brings its first rows (and its own ``schema_version``,
        ``version`` None), so the schema never stands without them.
        """
        conn = self._connection()
        with self._translated():
            taken = conn.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
                " AND tablename IN ('settings', 'credentials', 'audit_events', 'write_lock')"
            ).fetchone()
        if taken and taken[0]:
            raise ConflictError(
                f"{self._location} already holds a vault; to add this machine to it run:"
                " gwvault cluster join"
            )
        with self._transaction("BEGIN ISOLATION LEVEL SERIALIZABLE"):
            for statement in statements:
                conn.execute(statement.encode())
            if version is not None:
                conn.execute(
                    "INSERT INTO settings (key, value) VALUES ('schema_version', %s)",
                    [str(version)],
                )
            if fill is not None:
                fill()

    # -- transactions -------------------------------------------------------------------

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        if self._depth:
            self._take_write_lock()
            self._wrote = True
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        with self._transaction("BEGIN ISOLATION LEVEL READ COMMITTED"):
            self._take_write_lock()
            self._wrote = True
            yield

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        # One snapshot for every query in it; a write joined later still takes
        # the lock, and any row it changes that moved since fails the write.
        with self._transaction("BEGIN ISOLATION LEVEL REPEATABLE READ"):
            yield

    @contextlib.contextmanager
    def _transaction(self, begin: str) -> Iterator[None]:
        conn = self._connection()
        with self._translated():
            conn.execute(begin)
        self._depth = 1
        rolled_back = False
        try:
            with self._translated():
                yield
                self.before_commit.run()
                conn.execute("COMMIT")
        except BaseException:
            rolled_back = True
            with contextlib.suppress(psycopg.Error):
                if not conn.closed:
                    conn.execute("ROLLBACK")
            raise
        finally:
            self._depth = 0
            self._wrote = False
            self._locked = False
            if rolled_back:
                self.before_commit.rolled_back()

    def _take_write_lock(self) -> None:
        if self._locked:
            return
        with self._translated():
            self._connection().execute("SELECT id FROM write_lock WHERE id = 1 FOR UPDATE")
        self._locked = True

    @property
    def in_write(self) -> bool:
        return self._depth > 0

    @property
    def in_write_transaction(self) -> bool:
        return self._depth > 0 and self._wrote

    def end_transaction(self) -> bool:
        """Roll back a transaction left open (a request that raised mid-write)."""
        self.before_commit.pending = False
        conn = self._conn
        if conn is None or conn.closed or conn.info.transaction_status == _IDLE:
            self._depth, self._wrote, self._locked = 0, False, False
            return False
        with contextlib.suppress(psycopg.Error):
            conn.execute("ROLLBACK")
        self._depth, self._wrote, self._locked = 0, False, False
        return True

    # -- statements -----------------------------------------------------------------------

    def rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        with self._translated():
            cursor = self._connection().execute(_placeholders(sql), params)
            if cursor.description is None:
                return []
            names = [column.name for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def tuples(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        with self._translated():
            cursor = self._connection().execute(_placeholders(sql), params)
            return cursor.fetchall() if cursor.description is not None else []

    def execute(self, sql: str, params: list[Any]) -> None:
        with self._translated():
            self._connection().execute(_placeholders(sql), params)

    def insert(self, table: str, row: dict[str, Any]) -> None:
        names = [table, *row]
        if not all(_IDENTIFIER.fullmatch(name) for name in names):
            raise StorageError(f"refusing an insert into {table!r}: not a store name")
        columns = ", ".join(row)
        marks = ", ".join(["?"] * len(row))
        self.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values()))  # noqa: S608 - checked names

    # -- engine facts -------------------------------------------------------------------------

    def write_refusal(self) -> str | None:
        """A standby (in recovery) refuses writes, and so does a primary whose
        sessions are read-only (``default_transaction_read_only``, set by an
        administrator, or by a failover tool fencing an old primary)."""
        in_recovery, read_only = self.tuples(
            "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')", []
        )[0]
        if in_recovery:
            return f"{self._location} is a standby (in recovery); it takes no writes"
        if read_only != "off":
            return f"{self._location} makes this session read-only (transaction_read_only)"
        return None

    def engine_version(self) -> str:
        return f"PostgreSQL {self.tuples('SHOW server_version', [])[0][0]}"

    def damage(self) -> str | None:
        """None: the server checks its own pages (data checksums), and a damaged
        page fails the query that reads it."""
        return None

    def database_time_ms(self) -> int:
        """The database server's clock (the cluster's one clock), in ms since 1970."""
        rows = self.tuples("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint", [])
        return int(rows[0][0])

    def foreign_keys_to(self, table: str) -> list[tuple[str, str]]:
        """(table, column) of every foreign key that references ``table``."""
        rows = self.tuples(
            "SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint AS c"
            " JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)"
            " WHERE c.contype = 'f' AND c.confrelid = ?::regclass",
            [table],
        )
        return [(str(name), str(column)) for name, column in rows]

    def drop_freed_pages(self) -> None:
        """Nothing this process can do: the server removes dead rows at its next
        vacuum, and its WAL and backups are the database administrator's
        (threat_model.md, the shared database)."""

    def snapshot(self, scratch: Path) -> bytes:
        """A consistent copy of the vault as one SQLite file's bytes (what a
        recovery bundle carries), made from one snapshot of this database."""
        from vault.store.copying import sqlite_snapshot  # the copier imports both engines

        return sqlite_snapshot(self, scratch)

    def server_facts(self) -> dict[str, Any]:
        """What ``cluster status`` shows of the server: its role and, on a
        primary, each standby's replay lag as the server reports it."""
        role = self.tuples("SELECT pg_is_in_recovery()", [])[0][0]
        lag = self.rows(
            "SELECT application_name AS name, state,"
            " extract(epoch FROM replay_lag)::float AS replay_lag_s FROM pg_stat_replication",
            [],
        )
        return {"role": "standby" if role else "primary", "replicas": lag}

    # -- errors -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except pg_errors.IntegrityError as e:
            raise ConflictError(
                f"the change conflicts with what is stored in {self._location}"
            ) from e
        except psycopg.Error as e:
            if isinstance(e, pg_errors.ReadOnlySqlTransaction):
                self.close()  # a server before 14 reports nothing: reconnect at the next use
            raise StorageError(
                f"the vault database {self._location} cannot be used ({_reason(e)})"
            ) from e


_IDLE = psycopg.pq.TransactionStatus.IDLE


def _usable(conn: psycopg.Connection[tuple[Any, ...]] | None) -> bool:
    """Open, not found broken, and to a server that takes writes."""
    return conn is not None and not conn.closed and not conn.broken and _takes_writes(conn)


def _takes_writes(conn: psycopg.Connection[tuple[Any, ...]]) -> bool:
    """Whether the server, as it last reported, takes writes on this session
    (a server that reports neither parameter is believed)."""
    info = conn.info
    return (
        info.parameter_status("in_hot_standby") != "on"
        and info.parameter_status("default_transaction_read_only") != "on"
    )


def _reason(error: psycopg.Error) -> str:
    """The server's or libpq's own words, first line only: a message never
    quotes the conninfo, and a password is never in the conninfo anyway."""
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = primary or str(error) or type(error).__name__
    return text.strip().splitlines()[0][:300] if text.strip() else type(error).__name__


@functools.lru_cache(maxsize=512)
def _placeholders(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (and a literal ``%`` doubled),
    outside quoted strings and identifiers."""
    out: list[str] = []
    quote: str | None = None
    for char in sql:
        if quote is not None:
            out.append("%%" if char == "%" else char)
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
            out.append(char)
        elif char == "?":
            out.append("%s")
        elif char == "%":
            out.append("%%")
        else:
            out.append(char)
    return "".join(out)
