"""The SQLite engine: one vault database file, reached through sqlite-utils.

This is the only module that imports sqlite-utils or sqlite3 (design.md).
Writes take ``BEGIN IMMEDIATE``, so a transaction's reads and writes see no
other writer in between; the file is in WAL mode, so readers go on meanwhile.
WAL is a property of the file, set once when the file is made (or upgraded),
not on every connect; a connection is long-lived (one per server thread), and
only the per-connection settings are made when it opens.
Every ``sqlite3.Error`` leaves here as ``ConflictError`` or ``StorageError``.
A database file (or its -wal or -shm) that group or others may read or write
is refused before it is opened (T-DD-4), as the key file is (T-KS-1).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

from agent_keys.errors import AccessDeniedError, ConflictError, StorageError
from agent_keys.private_files import create_private_file
from vault.store.engine import BeforeCommit

_BUSY_TIMEOUT_MS = 10_000


class SqliteEngine:
    """A ``StoreEngine`` over one SQLite file."""

    kind = "sqlite"

    def __init__(self, db: sqlite_utils.Database, path: Path) -> None:
        self._db = db
        self.path = path
        self._opened_file = _file_identity(path)
        self._wrote = False  # the open transaction is, or was joined by, a write
        self.before_commit = BeforeCommit()

    @classmethod
    def create(cls, path: Path) -> SqliteEngine:
        """A new, empty database file (mode 0600); refuses to adopt an existing file."""
        try:
            # O_EXCL: never adopt or clobber a file someone else put there.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
        except OSError as e:
            raise StorageError(f"cannot create {path}: {e.strerror}") from e
        engine = cls(_connect(path), path)
        engine.use_write_ahead_log()
        return engine

    @classmethod
    def create_from_snapshot(cls, path: Path, snapshot: bytes) -> SqliteEngine:
        """A new database file (0600) holding ``snapshot``; refuses to replace one."""
        try:
            create_private_file(path, snapshot)
        except OSError as e:
            raise StorageError(f"cannot create {path}: {e.strerror}") from e
        engine = cls.open(path)
        engine.use_write_ahead_log()  # VACUUM INTO writes a rollback-journal file
        return engine

    @classmethod
    def open(cls, path: Path) -> SqliteEngine:
        """The existing database ``path``; ``AccessDeniedError`` if it or its
        -wal/-shm is accessible to group or others, ``StorageError`` if missing."""
        if not path.is_file():
            raise StorageError(f"{path} is missing: this is not an initialised gwvault data dir")
        for file in (path, *_companions(path)):
            _check_private(file)
        return cls(_connect(path), path)

    @property
    def location(self) -> str:
        return str(self.path)

    def close(self) -> None:
        self._db.close()

    def use_write_ahead_log(self) -> None:
        """Put the file in WAL mode (it stays so for every later connection).

        Outside any transaction: SQLite cannot change the journal mode in one.
        """
        with _translated(self.path):
            mode = self._db.conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if not mode or str(mode[0]).lower() != "wal":
            raise StorageError(f"{self.path} cannot be put in WAL mode (it stays {mode!r})")

    def is_opened_file(self) -> bool:
        """Whether the path still names the file this connection opened, still
        private: a long-lived connection to a file since replaced (a restore)
        or opened up to others must be reopened (and checked) before use."""
        try:
            st = os.lstat(self.path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._opened_file and not st.st_mode & 0o077

    def end_transaction(self) -> bool:
        """Roll back a transaction left open (a request that raised mid-write);
        True if there was one.  A long-lived connection must start the next
        request with no transaction of the last one."""
        conn = self._db.conn
        self.before_commit.pending = False
        if not conn.in_transaction:
            return False
        self._wrote = False
        with _translated(self.path):
            conn.execute("ROLLBACK")
        return True

    @property
    def in_write_transaction(self) -> bool:
        """Whether the open transaction may hold uncommitted changes (a write,
        or a read that a write joined)."""
        return self._wrote and self._db.conn.in_transaction

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        conn = self._db.conn
        if conn.in_transaction:
            self._wrote = True
            yield
            return
        with _translated(self.path):
            conn.execute("BEGIN IMMEDIATE")
        self._wrote = True
        rolled_back = False
        try:
            with _translated(self.path):
                yield
                self.before_commit.run()
                conn.execute("COMMIT")
        except BaseException:
            rolled_back = True
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            self._wrote = False
            if rolled_back:
                self.before_commit.rolled_back()

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        # A deferred transaction: one snapshot of the file for every read in it.
        conn = self._db.conn
        if conn.in_transaction:
            yield
            return
        with _translated(self.path):
            conn.execute("BEGIN")
        rolled_back = False
        try:
            yield
            self.before_commit.run()  # a write that joined this read appended entries
        except BaseException:
            # A write joined this read and failed (or its block sink refused it):
            # nothing of it may stand, as on PostgreSQL.
            if self._wrote and conn.in_transaction:
                conn.execute("ROLLBACK")
                rolled_back = True
            raise
        finally:
            self._wrote = False
            if conn.in_transaction:
                conn.execute("COMMIT")
            if rolled_back:
                self.before_commit.rolled_back()
            self.before_commit.pending = False

    @property
    def in_write(self) -> bool:
        return self._db.conn.in_transaction

    def rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        with _translated(self.path):
            return list(self._db.query(sql, params))

    def tuples(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        with _translated(self.path):
            return self._db.conn.execute(sql, params).fetchall()

    def execute(self, sql: str, params: list[Any]) -> None:
        with _translated(self.path):
            self._db.execute(sql, params)

    def insert(self, table: str, row: dict[str, Any]) -> None:
        with _translated(self.path):
            self._db.table(table).insert(row)

    def write_refusal(self) -> str | None:
        # The file, its directory (SQLite makes its log and index there) and a
        # log or index already made: a read-only mount or mode refuses them all.
        existing = [c for c in _companions(self.path) if c.exists()]
        for path in (self.path, self.path.parent, *existing):
            if not os.access(path, os.W_OK):
                return f"{path} is not writable by this process"
        return None

    def engine_version(self) -> str:
        return f"SQLite {self.tuples('SELECT sqlite_version()', [])[0][0]}"

    def damage(self) -> str | None:
        # quick_check: the structure without matching every index to its
        # table (integrity_check's O(N log N) part); the first problem only.
        rows = self.tuples("PRAGMA quick_check(1)", [])
        found = str(rows[0][0]) if rows else "no answer"
        return None if found == "ok" else found[:300]

    def database_time_ms(self) -> int:
        # One machine, one clock: the file's is this machine's.
        rows = self.tuples("SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)", [])
        return int(rows[0][0])

    def foreign_keys_to(self, table: str) -> list[tuple[str, str]]:
        rows = self.tuples(
            'SELECT m.name, f."from" FROM sqlite_master AS m, pragma_foreign_key_list(m.name) AS f'
            " WHERE m.type = 'table' AND f.\"table\" = ?",
            [table],
        )
        return [(str(name), str(column)) for name, column in rows]

    def drop_freed_pages(self) -> None:
        # Freed pages are zeroed in the file (secure_delete), but the old ones
        # linger in the WAL until a checkpoint; truncating it drops them now.
        # Best effort: a busy reader only delays this.
        with contextlib.suppress(StorageError):
            self.tuples("PRAGMA wal_checkpoint(TRUNCATE)", [])

    def snapshot(self, scratch: Path) -> bytes:
        """VACUUM INTO a private scratch file, read back, removed."""
        try:
            os.close(os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
            with _translated(self.path):
                self._db.conn.execute("VACUUM INTO ?", [str(scratch)])
            return scratch.read_bytes()
        except OSError as e:
            raise StorageError(f"cannot copy the vault database: {e.strerror}") from e
        finally:
            scratch.unlink(missing_ok=True)


def _companions(path: Path) -> tuple[Path, Path]:
    """SQLite's write-ahead log and shared-memory index beside the database."""
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def _file_identity(path: Path) -> tuple[int, int]:
    try:
        st = os.lstat(path)
    except OSError as e:
        raise StorageError(f"cannot read {path}: {e.strerror}") from e
    return st.st_dev, st.st_ino


def _check_private(path: Path) -> None:
    # SQLite gives a new -wal/-shm the database's mode, but one left from before
    # keeps its own; either holds pages of the database.
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return  # no -wal or -shm yet: SQLite makes them with the database's mode
    except OSError as e:
        raise StorageError(f"cannot read {path}: {e.strerror}") from e
    if not stat.S_ISREG(st.st_mode):
        raise StorageError(f"{path} is not a regular file; refusing to use it")
    if st.st_mode & 0o077:
        raise AccessDeniedError(
            f"{path} is accessible to group or others (mode"
            f" {stat.S_IMODE(st.st_mode):04o}); run: chmod 600 {path}"
        )


def _connect(path: Path) -> sqlite_utils.Database:
    try:
        # check_same_thread=False: the owner of a thread's connection (a
        # server's vault handle) may close it at shutdown from another thread;
        # a connection is still used by one thread at a time.
        conn = sqlite3.connect(
            path,
            isolation_level=None,
            timeout=_BUSY_TIMEOUT_MS / 1000,
            check_same_thread=False,
        )
    except sqlite3.Error as e:
        raise StorageError(f"cannot open {path}: {e}") from e
    db = sqlite_utils.Database(conn, execute_plugins=False)
    with _translated(path):
        # Per connection, not per file.  FULL: in WAL mode a commit is durable
        # only when the log is synced at each commit; NORMAL syncs at
        # checkpoints only, so a power cut could lose a committed audit entry
        # (and the agent hands out a secret only once its entry is durable).
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        # The row an INSERT OR REPLACE replaces fires its delete triggers (the
        # credential counts of schema 5 rely on it).  sqlite-utils sets this
        # too; said here so it does not hang on a library default.
        conn.execute("PRAGMA recursive_triggers = ON")
        # Freed pages are zeroed, so a deleted credential's wrapped data key
        # does not linger in the file (crypto-shred, design.md "At rest").
        conn.execute("PRAGMA secure_delete = ON")
    return db


@contextlib.contextmanager
def _translated(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as e:
        raise ConflictError(f"the change conflicts with what is stored in {path.name}") from e
    except sqlite3.DatabaseError as e:
        raise StorageError(
            f"{path} cannot be used ({e}); it is corrupt, locked, read-only or not a gwvault"
            " database"
        ) from e
