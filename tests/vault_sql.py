"""Raw SQL on a vault's database, the same for both engines (``EngineVaults.sql``).

What a test does here is what someone with the database's own rights can do
behind gwvault's back: edit rows, break inserts, look for bytes.  Statements
use ``?`` placeholders on both engines.  A change the schema refuses (an
append-only trigger, a constraint) raises ``ChangeRefusedError``.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg import sql as pg_sql

from tests.postgres_servers import PostgresServer


class ChangeRefusedError(Exception):
    """The database's schema refused a change (a trigger or a constraint)."""


class VaultSql(Protocol):
    engine: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
        """The one row of a query."""
        ...

    def tables_with_column(self, column: str) -> list[str]:
        """Tables that have a column named ``column``."""
        ...

    def refuse_inserts(self, table: str, message: str) -> None:
        """Make every insert into ``table`` fail with ``message`` (a full disk, say)."""
        ...

    def allow_inserts(self, table: str) -> None:
        """Undo ``refuse_inserts``."""
        ...

    def holds(self, value: bytes) -> bool:
        """Whether ``value`` can still be read from the database.  SQLite: anywhere
        in the file, free pages included.  PostgreSQL: in any live row (dead
        versions are the server's vacuum's, threat_model.md's shared database)."""
        ...


class SqliteSql:
    engine = "sqlite"

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db, self._path = db, path

    @classmethod
    @contextlib.contextmanager
    def opened(cls, path: Path, *, attacker: bool) -> Iterator[SqliteSql]:
        with closing(sqlite3.connect(path)) as db:
            if attacker:  # the file's writer simply drops the triggers
                for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
                    db.execute(f'DROP TRIGGER "{name}"')
            yield cls(db, path)
            db.commit()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        try:
            self._db.execute(sql, params)
        except sqlite3.IntegrityError as e:
            raise ChangeRefusedError(str(e)) from e

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
        [row] = self.rows(sql, params)
        return row

    def tables_with_column(self, column: str) -> list[str]:
        return [
            name
            for (name,) in self.rows(
                "SELECT m.name FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS c"
                " WHERE m.type = 'table' AND c.name = ?",
                [column],
            )
        ]

    def refuse_inserts(self, table: str, message: str) -> None:
        self.execute(
            f'CREATE TRIGGER "{table}_refused" BEFORE INSERT ON "{table}"'
            f" BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )

    def allow_inserts(self, table: str) -> None:
        self.execute(f'DROP TRIGGER "{table}_refused"')

    def holds(self, value: bytes) -> bool:
        self._db.commit()
        return value in self._path.read_bytes()


class PostgresSql:
    engine = "postgresql"

    def __init__(self, db: psycopg.Connection[tuple[Any, ...]]) -> None:
        self._db = db

    @classmethod
    @contextlib.contextmanager
    def opened(
        cls, server: PostgresServer, database: str, *, attacker: bool
    ) -> Iterator[PostgresSql]:
        with server.admin(database) as db:
            db.autocommit = False
            if attacker:  # the server's superuser: no ordinary trigger fires
                db.execute("SET session_replication_role = replica")
            yield cls(db)
            db.commit()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        try:
            with self._db.transaction():  # a refused statement leaves the block usable
                self._db.execute(_placeholders(sql), params)
        except psycopg.errors.IntegrityError as e:
            raise ChangeRefusedError(str(e)) from e

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(_placeholders(sql), params).fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
        [row] = self.rows(sql, params)
        return row

    def tables_with_column(self, column: str) -> list[str]:
        return [
            str(name)
            for (name,) in self.rows(
                "SELECT table_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND column_name = ?",
                [column],
            )
        ]

    def refuse_inserts(self, table: str, message: str) -> None:
        names = {
            "function": pg_sql.Identifier(f"{table}_refused"),
            "table": pg_sql.Identifier(table),
        }
        self._db.execute(
            pg_sql.SQL(
                "CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN RAISE EXCEPTION {message}; END $$"
            ).format(**names, message=pg_sql.Literal(message))
        )
        self._db.execute(
            pg_sql.SQL(
                "CREATE TRIGGER {function} BEFORE INSERT ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION {function}()"
            ).format(**names)
        )

    def allow_inserts(self, table: str) -> None:
        function = pg_sql.Identifier(f"{table}_refused")
        self._db.execute(pg_sql.SQL("DROP FUNCTION {} CASCADE").format(function))

    def holds(self, value: bytes) -> bool:
        columns = self.rows(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND data_type = 'bytea'"
        )
        for table, column in columns:
            query = pg_sql.SQL("SELECT 1 FROM {} WHERE position(%s IN {}) > 0 LIMIT 1").format(
                pg_sql.Identifier(table), pg_sql.Identifier(column)
            )
            if self._db.execute(query, [value]).fetchone() is not None:
                return True
        return False


def _placeholders(sql: str) -> str:
    """The tests' ``?`` placeholders as psycopg's ``%s`` (their SQL quotes no ``?`` or ``%``)."""
    return sql.replace("%", "%%").replace("?", "%s")
