"""The storage engine interface: what ``VaultStore`` needs of a database.

An engine is one connection to one vault database.  It runs statements with
``?`` placeholders, groups them in transactions, and turns every driver error
into ``ConflictError`` (a constraint refused the change) or ``StorageError``
(anything else), chained to the driver's exception.  SQLite
(``sqlite_engine``) is the embedded engine; a shared engine for a gateway
cluster stands beside it behind this same interface (design.md, "Storage
engines").
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol


class BeforeCommit:
    """What runs inside a transaction that appended audit entries, just before
    it commits: sending them to the ``block`` audit sinks (vault.audit.sinks),
    so a sink that cannot take them fails the change, which then rolls back.

    Run once per transaction (the hook appends no entry of its own); dropped
    by a rollback.
    """

    def __init__(self) -> None:
        self.hook: Callable[[], None] | None = None
        self.pending = False  # this transaction appended an audit entry
        self._after_rollback: list[Callable[[], None]] = []

    def run(self) -> None:
        pending, self.pending = self.pending, False
        if pending and self.hook is not None:
            self.hook()

    def after_rollback(self, note: Callable[[], None]) -> None:
        """Have ``note`` run in a write of its own once this transaction has
        rolled back: what the hook must record of a refusal that rolls back
        everything else (a block sink's outage, for ``status``)."""
        self._after_rollback.append(note)

    def rolled_back(self) -> None:
        """Called by the engine once its transaction is rolled back (or committed:
        then nothing is waiting).  A note that fails is dropped: the refusal it
        records is already on its way to the caller."""
        self.pending = False
        notes, self._after_rollback = self._after_rollback, []
        for note in notes:
            with contextlib.suppress(Exception):
                note()


class StoreEngine(Protocol):
    """One open connection to a vault database."""

    kind: str
    """``sqlite`` or ``postgresql``: which schema statements and upgrades apply."""

    before_commit: BeforeCommit

    @property
    def location(self) -> str:
        """Where the database is, for messages (a path; never a password)."""
        ...

    def write(self) -> AbstractContextManager[None]:
        """One atomic write transaction, taken at once (no lost updates between
        its reads and writes); nested use joins the outer one."""
        ...

    def reading(self) -> AbstractContextManager[None]:
        """One consistent view for several reads; inside a write, that write's."""
        ...

    @property
    def in_write(self) -> bool:
        """Whether a transaction (a write or a read snapshot) is open."""
        ...

    @property
    def in_write_transaction(self) -> bool:
        """Whether the open transaction may hold uncommitted changes."""
        ...

    def rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        """The rows of a query, as column-name dicts."""
        ...

    def tuples(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """The rows of a query as tuples in column order (for long scans)."""
        ...

    def execute(self, sql: str, params: list[Any]) -> None: ...

    def insert(self, table: str, row: dict[str, Any]) -> None:
        """Insert one row; ``table`` and the keys are the store's own names."""
        ...

    def snapshot(self, scratch: Path) -> bytes:
        """A consistent copy of the whole database, as one file's bytes
        (``scratch`` is a private path the engine may use on the way)."""
        ...

    def use_write_ahead_log(self) -> None:
        """Set the database's durable journal mode once (at creation or upgrade),
        outside any transaction; an engine without one does nothing."""
        ...

    def end_transaction(self) -> bool:
        """Roll back a transaction left open; True if there was one."""
        ...

    def is_opened_file(self) -> bool:
        """Whether the database is still the one this connection opened (and
        still private); a long-lived connection is reopened when it is not."""
        ...

    def write_refusal(self) -> str | None:
        """Why a write would be refused now (a read-only file, a standby
        server), found without writing; None when writes are taken.  For
        ``/readyz`` (``vault.cluster.readiness``); outside any transaction."""
        ...

    def database_time_ms(self) -> int:
        """The database's clock in ms since 1970: leases are timed on it, so
        every member of a cluster agrees (``vault.cluster.lease``)."""
        ...

    def foreign_keys_to(self, table: str) -> list[tuple[str, str]]:
        """(table, column) of every foreign key referencing ``table``."""
        ...

    def engine_version(self) -> str:
        """The database software's version (``gwvault diagnostics``)."""
        ...

    def damage(self) -> str | None:
        """A quick structural check of the database (``gwvault doctor``): what is
        damaged, or None.  Outside any transaction."""
        ...

    def drop_freed_pages(self) -> None:
        """After key material was deleted: drop the pages that still hold it
        where this process can (SQLite's write-ahead log); best effort."""
        ...

    def close(self) -> None: ...
