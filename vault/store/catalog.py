"""What a vault database holds: its tables, their columns and keys, in reference order.

Read from each database's own catalog (SQLite's ``sqlite_master`` and
``pragma_table_info``, PostgreSQL's ``information_schema``), never from a list
kept here, so a table a later schema adds is copied (``vault.store.copying``)
with no change to this module.  Every name read is checked against the
store's own naming before it goes into a statement: a file handed to gwvault
could name a table anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from agent_keys.errors import StorageError
from vault.store.engine import StoreEngine

_STORE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_TABLE_NAMES = {
    # sqlite_sequence and sqlite_stat*: SQLite's own bookkeeping, not the vault's.
    "sqlite": (
        "SELECT name FROM sqlite_master"
        " WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
    ),
    "postgresql": "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()",
}
# (column, position in the primary key or 0, whether the database numbers it)
_COLUMNS = {
    "sqlite": "SELECT name, pk, 0 FROM pragma_table_info(?) ORDER BY cid",
    "postgresql": (
        "SELECT c.column_name, coalesce(k.ordinal_position, 0), c.is_identity = 'YES'"
        " FROM information_schema.columns AS c"
        " LEFT JOIN information_schema.table_constraints AS t"
        "  ON t.table_schema = c.table_schema AND t.table_name = c.table_name"
        "  AND t.constraint_type = 'PRIMARY KEY'"
        " LEFT JOIN information_schema.key_column_usage AS k"
        "  ON k.constraint_schema = t.constraint_schema"
        "  AND k.constraint_name = t.constraint_name AND k.column_name = c.column_name"
        " WHERE c.table_schema = current_schema() AND c.table_name = ?"
        " ORDER BY c.ordinal_position"
    ),
}


@dataclass(frozen=True)
class StoredTable:
    """One table: its columns in order, its primary key, and its numbered columns."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    identity: tuple[str, ...] = ()
    """PostgreSQL identity columns (their sequence must follow copied rows)."""


def table_names(engine: StoreEngine) -> set[str]:
    """Every table of the database, by name (checked)."""
    return {_checked(str(name), engine) for (name,) in engine.tuples(_TABLE_NAMES[engine.kind], [])}


def stored_table(engine: StoreEngine, name: str) -> StoredTable:
    """``name``'s columns and key; ``StorageError`` for a table with no primary
    key (its rows could not be copied batch by batch, nor a copy resumed)."""
    rows = engine.tuples(_COLUMNS[engine.kind], [_checked(name, engine)])
    columns = tuple(_checked(str(column), engine) for column, _, _ in rows)
    key = tuple(str(column) for column, position, _ in sorted(rows, key=lambda r: r[1]) if position)
    identity = tuple(str(column) for column, _, numbered in rows if numbered)
    if not columns:
        raise StorageError(f"{engine.location} has no table {name}")
    if not key:
        raise StorageError(f"the table {name} in {engine.location} has no primary key")
    return StoredTable(name, columns, key, identity)


def in_reference_order(engine: StoreEngine, names: Iterable[str]) -> list[str]:
    """``names`` with every table after the tables its foreign keys reference
    (ties by name), so rows can be inserted in that order."""
    wanted = set(names)
    needs: dict[str, set[str]] = {name: set() for name in wanted}
    for referenced in wanted:
        for referencing, _ in engine.foreign_keys_to(referenced):
            if referencing in wanted and referencing != referenced:
                needs[referencing].add(referenced)
    ordered: list[str] = []
    while needs:
        ready = sorted(name for name, before in needs.items() if not before - set(ordered))
        if not ready:
            raise StorageError(
                f"the tables {', '.join(sorted(needs))} of {engine.location} reference each"
                " other in a cycle; they cannot be copied in order"
            )
        ordered.extend(ready)
        for name in ready:
            del needs[name]
    return ordered


def _checked(name: str, engine: StoreEngine) -> str:
    if not _STORE_NAME.fullmatch(name):
        raise StorageError(
            f"{engine.location} holds a table or column named {name[:64]!r}, which no gwvault"
            " schema makes; it is not a gwvault vault"
        )
    return name
