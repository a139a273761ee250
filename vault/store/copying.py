"""Copying a vault from one storage engine to another, table by table.

Two uses: ``gwvault store migrate`` copies a single machine's SQLite vault into
an empty PostgreSQL database (``vault.store_migration``), and a PostgreSQL
vault's recovery bundle carries a SQLite copy of it (``sqlite_snapshot``).

- Every table of the source is copied, whichever the schema has (read from
  the source's catalog, ``vault.store.catalog``), in foreign-key order, except
  those the target keeps itself: the counts and the facts generation (its
  triggers follow the copied rows) and PostgreSQL's write lock.  A source
  table, or column, the target lacks is refused: its rows would be lost.
- Rows go in batches by primary key, each batch one write of the target (or
  part of a write the caller holds open).  A row the target already holds is
  skipped (``ON CONFLICT DO NOTHING``): a copy that was killed is run again
  and goes on.  ``table_digest`` tells whether the two now hold the same rows.
- The caller holds the source in one transaction (``reading()``) for a
  consistent copy.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from agent_keys.errors import ConflictError, StorageError
from vault.store.catalog import StoredTable, in_reference_order, stored_table, table_names
from vault.store.engine import StoreEngine
from vault.store.postgres_schema import (
    POSTGRES_FIRST_VERSION,
    POSTGRES_STATEMENTS,
    POSTGRES_UPGRADES,
)
from vault.store.schema import SCHEMA_VERSION, STATEMENTS, UPGRADES
from vault.store.sqlite_engine import SqliteEngine

MAINTAINED_BY_TARGET = frozenset({"credential_counts", "facts_generation", "write_lock"})
"""Tables whose rows the target's own triggers (or schema) make; never copied."""
# Bound values per INSERT: well under SQLite's 32766 and PostgreSQL's 65535.
VALUES_PER_BATCH = 4000

CopyProgress = Callable[[str, int], None]
"""Told (table, rows copied so far) after each batch is committed."""


def schema_statements(kind: str) -> tuple[str, ...]:
    """The statements that make an empty vault database of engine ``kind`` at
    the current schema, with no row of settings: a copy brings the source's."""
    if kind == "sqlite":
        upgrades, first, statements = UPGRADES, 1, STATEMENTS
    else:
        upgrades, first, statements = POSTGRES_UPGRADES, POSTGRES_FIRST_VERSION, POSTGRES_STATEMENTS
    later = (upgrades[version] for version in range(first + 1, SCHEMA_VERSION + 1))
    return statements + tuple(statement for step in later for statement in step)


def copied_tables(source: StoreEngine, target: StoreEngine) -> list[StoredTable]:
    """The source's tables a copy carries, in the order it carries them.

    ``StorageError`` when the target lacks one of them, or one of its columns.
    """
    names = table_names(source) - MAINTAINED_BY_TARGET
    held = table_names(target)
    tables: list[StoredTable] = []
    for name in in_reference_order(source, names):
        if name not in held:
            raise StorageError(
                f"{target.location} has no table {name}, which {source.location} holds;"
                " both must be at the same schema version (upgrade gwvault on this machine)"
            )
        table, theirs = stored_table(source, name), stored_table(target, name)
        lacking = set(table.columns) - set(theirs.columns)
        if lacking:
            raise StorageError(
                f"the table {name} in {target.location} has no column"
                f" {', '.join(sorted(lacking))}; both must be at the same schema version"
            )
        # The target numbers rows its own way: its identity columns are the ones to advance.
        tables.append(replace(table, identity=theirs.identity))
    return tables


def copy_tables(
    source: StoreEngine,
    target: StoreEngine,
    names: Collection[str] | None = None,
    progress: CopyProgress | None = None,
    *,
    only_rows: Mapping[str, str] | None = None,
) -> dict[str, int]:
    """Copy the rows of every table (or of ``names``) the target does not hold
    yet; returns the rows read from each table, in copy order.  ``only_rows``
    names the rows to copy of some tables (a condition of this module's own).

    Raises ``StorageError`` (the target lacks a table, a row does not fit it,
    either database fails).
    """
    copied: dict[str, int] = {}
    for table in copied_tables(source, target):
        if names is None or table.name in names:
            kept = (only_rows or {}).get(table.name)
            copied[table.name] = _copy_table(source, target, table, progress, kept)
    return copied


def _copy_table(
    source: StoreEngine,
    target: StoreEngine,
    table: StoredTable,
    progress: CopyProgress | None,
    kept: str | None,
) -> int:
    columns = ", ".join(table.columns)
    row_marks = f"({', '.join('?' * len(table.columns))})"
    copied = 0
    for batch in _batches(source, table, kept):
        insert = (
            f"INSERT INTO {table.name} ({columns}) VALUES"  # noqa: S608 - catalog names, checked
            f" {', '.join([row_marks] * len(batch))} ON CONFLICT DO NOTHING"
        )
        values = [_plain(value) for row in batch for value in row]
        try:
            with target.write():
                target.execute(insert, values)
        except ConflictError as e:
            raise StorageError(
                f"a row of {table.name} from {source.location} does not fit {target.location}"
                f" ({e.__cause__ or e})"
            ) from e
        copied += len(batch)
        if progress is not None:
            progress(table.name, copied)
    if table.identity:
        with target.write():
            _advance_identities(target, table)
    return copied


def _advance_identities(target: StoreEngine, table: StoredTable) -> None:
    """Set each identity column's sequence past the copied rows, so the next row
    the database numbers (an audit checkpoint) does not take a copied one's number."""
    for column in table.identity:
        target.tuples(
            f"SELECT setval(pg_get_serial_sequence(?, ?), coalesce(max({column}), 0) + 1, false)"  # noqa: S608 - catalog names, checked
            f" FROM {table.name}",
            [table.name, column],
        )


def table_digest(engine: StoreEngine, table: StoredTable) -> tuple[int, bytes]:
    """(rows, SHA-256 over every row in key order) of ``table``'s columns in ``engine``.

    Values are compared as the engines return them, with numbers as text: a
    column the two schemas type differently (a single machine's ``tls_identity``
    id is an INTEGER in SQLite and TEXT in PostgreSQL) holds the same value.
    """
    digest, count = hashlib.sha256(), 0
    for batch in _batches(engine, table):
        for row in batch:
            for value in row:
                digest.update(_canonical(value))
        count += len(batch)
    return count, digest.digest()


def _batches(
    engine: StoreEngine, table: StoredTable, kept: str | None = None
) -> Iterator[list[tuple[Any, ...]]]:
    """``table``'s rows (its columns in order; those where ``kept`` holds),
    batch by batch in key order."""
    size = max(1, VALUES_PER_BATCH // len(table.columns))
    key_at = [table.columns.index(column) for column in table.key]
    order = ", ".join(table.key)
    keys = f"({order})" if len(table.key) > 1 else order
    marks = f"({', '.join('?' * len(table.key))})" if len(table.key) > 1 else "?"
    select = f"SELECT {', '.join(table.columns)} FROM {table.name}"  # noqa: S608 - catalog names, checked
    where = f" WHERE {kept}" if kept else ""
    after: list[Any] | None = None
    while True:
        if after is None:
            batch = engine.tuples(f"{select}{where} ORDER BY {order} LIMIT ?", [size])
        else:
            more = f"{where} AND" if kept else " WHERE"
            batch = engine.tuples(
                f"{select}{more} {keys} > {marks} ORDER BY {order} LIMIT ?", [*after, size]
            )
        if batch:
            yield batch
        if len(batch) < size:
            return
        after = [batch[-1][i] for i in key_at]


def _plain(value: Any) -> Any:
    """A driver's byte views as bytes, which both engines store as a blob."""
    return bytes(value) if isinstance(value, memoryview | bytearray) else value


def _canonical(value: Any) -> bytes:
    if value is None:
        return b"\x00"
    if isinstance(value, bytes | bytearray | memoryview):
        raw, kind = bytes(value), b"\x01"
    else:
        raw, kind = str(value).encode("utf-8"), b"\x02"
    return kind + struct.pack(">Q", len(raw)) + raw


# A cluster member's TLS identity (keyed by its member id, its key wrapped for
# that member alone) serves no other machine, and SQLite's table holds a single
# machine's only (id 1): a snapshot leaves members' out, as a restore would
# forget them (vault.cluster.founding.forget_members) and make its own.
_SNAPSHOT_ROWS = {"tls_identity": "CAST(id AS TEXT) = '1'"}


def sqlite_snapshot(engine: StoreEngine, scratch: Path) -> bytes:
    """A consistent SQLite copy of the vault in ``engine`` (one snapshot of it):
    made in the new private file ``scratch`` with the SQLite schema at the
    current version and exactly the source's rows (but cluster members' TLS
    identities), read back and removed.

    This is what a PostgreSQL vault's recovery bundle carries
    (``PostgresEngine.snapshot``).  Raises ``StorageError``.
    """
    copy = SqliteEngine.create(scratch)
    try:
        with copy.write():
            for statement in schema_statements("sqlite"):
                copy.execute(statement, [])
            with engine.reading():
                copy_tables(engine, copy, only_rows=_SNAPSHOT_ROWS)
        # One self-contained file, as VACUUM INTO writes (no write-ahead log to carry).
        copy.execute("PRAGMA journal_mode = DELETE", [])
        copy.close()
        return scratch.read_bytes()
    except OSError as e:
        raise StorageError(f"cannot copy the vault database: {e.strerror}") from e
    finally:
        copy.close()
        for suffix in ("", "-wal", "-shm"):
            scratch.with_name(scratch.name + suffix).unlink(missing_ok=True)
