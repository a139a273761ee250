"""The vault database as typed records, over a storage engine.

It stores and returns typed records and never sees a secret in clear.  Writes
happen in ``with store.write():`` blocks, so a change and its audit entry
commit together or not at all.  The engine (``vault.store.engine``) owns the
connection and turns driver errors into ``StorageError`` and ``ConflictError``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from agent_keys.errors import ConflictError, StorageError
from vault.format.audit_chain import (
    AuditEntry,
    AuditFields,
    Checkpoint,
    Rotation,
    entry_digest,
    genesis,
)
from vault.format.data_source import LEGACY_TLS_MODE
from vault.format.envelope import CredentialBinding, SealedSecret
from vault.store.engine import StoreEngine
from vault.store.locator import PostgresLocation
from vault.store.postgres_schema import (
    POSTGRES_FIRST_VERSION,
    POSTGRES_STATEMENTS,
    POSTGRES_UPGRADES,
)
from vault.store.records import (
    CredentialLife,
    CredentialRecord,
    GatewayKeyRecord,
    MasterKeyRecord,
)
from vault.store.schema import SCHEMA_VERSION, STATEMENTS, UPGRADES
from vault.store.sqlite_engine import SqliteEngine

AUDIT_KEY_PENDING = "audit_key_pending"
"""Setting: this vault was upgraded to the chain and has no audit key yet."""
ROWS_UNSEALED = "rows_unsealed"
"""Setting: this vault was upgraded to sealed rows and its old rows have no MAC yet."""
_AUDIT_FIELDS = (
    "seq", "at", "actor", "channel", "action", "target", "outcome", "request_id", "details",
    "prev_hash", "hash", "mac",
)  # fmt: skip
_AUDIT_COLUMNS = ", ".join(_AUDIT_FIELDS)
_AUDIT_PLACEHOLDERS = ", ".join("?" * len(_AUDIT_FIELDS))
_GATEWAY_KEY_COLUMNS = ", ".join(field.name for field in fields(GatewayKeyRecord))
_CREDENTIAL_COLUMNS = (
    "id, name, version, type, server, database, auth, username,"
    " gmk_version, wrapped_dek, ciphertext, created_at, updated_at, owner, issued_at, mac,"
    " binding_version, tls, ca_pem, disabled_at, deleted_at, purge_after, expires_at,"
    " rotate_every, contact"
)
# An update keeps the row (and its place): the counts' triggers see a rewrap as one.
_SAVE_CREDENTIAL = (
    f"INSERT INTO credentials ({_CREDENTIAL_COLUMNS}) VALUES ({', '.join('?' * 25)})"  # noqa: S608 - fixed column list
    " ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _CREDENTIAL_COLUMNS.split(", ") if c != "id")
)


class VaultStore:
    """Typed access to the tables of one vault database file."""

    def __init__(self, engine: StoreEngine, member_id: str | None = None) -> None:
        self._engine = engine
        self.member_id = member_id
        """The cluster member that opened this store; None on a single machine."""

    @property
    def location(self) -> str:
        return self._engine.location

    @classmethod
    def create(cls, path: Path) -> VaultStore:
        """Create a new database file (mode 0600) with the current schema."""
        store = cls(SqliteEngine.create(path))
        with store.write():
            for statement in STATEMENTS:
                store.execute(statement, [])
            store._upgrade(from_version=1)
        return store

    @classmethod
    def create_shared(cls, location: PostgresLocation) -> VaultStore:
        """Make the current schema in an empty PostgreSQL database (a cluster's
        first member); ``ConflictError`` if the database already holds a vault."""
        from vault.store.postgres_engine import PostgresEngine  # psycopg: only for a cluster

        engine = PostgresEngine(location.conninfo, location.display)
        try:
            engine.create_schema(POSTGRES_STATEMENTS, POSTGRES_FIRST_VERSION)
            store = cls(engine)
            with store.write():
                store._upgrade(from_version=POSTGRES_FIRST_VERSION)
        except BaseException:
            engine.close()
            raise
        return store

    @classmethod
    def open(cls, path: Path) -> VaultStore:
        """Open an existing vault database; ``StorageError`` if it is not one."""
        return cls._checked(SqliteEngine.open(path))

    @classmethod
    def open_shared(cls, location: PostgresLocation, member_id: str) -> VaultStore:
        """Open a cluster's shared database as ``member_id``, upgrading an older schema."""
        from vault.store.postgres_engine import PostgresEngine  # psycopg: only for a cluster

        store = cls._checked(PostgresEngine(location.conninfo, location.display))
        store.member_id = member_id
        return store

    @classmethod
    def create_from_snapshot(cls, path: Path, snapshot: bytes) -> VaultStore:
        """A new database file (0600) holding ``snapshot``; refuses to replace one."""
        return cls._checked(SqliteEngine.create_from_snapshot(path, snapshot))

    @classmethod
    def _checked(cls, engine: StoreEngine) -> VaultStore:
        """The store over ``engine`` at the current schema, upgrading an older one.

        A schema newer than this gwvault knows is refused, never guessed at: a
        member of an older version must not write rows it cannot read back.
        """
        store = cls(engine)
        first = 1 if engine.kind == "sqlite" else POSTGRES_FIRST_VERSION
        try:
            version = store.setting("schema_version")
            if version is not None and version.isdigit() and first <= int(version) < SCHEMA_VERSION:
                with store.write():
                    store._upgrade(from_version=int(version))
                engine.use_write_ahead_log()  # once, for every later connection
                version = str(SCHEMA_VERSION)
        except BaseException:
            engine.close()
            raise
        if version != str(SCHEMA_VERSION):
            engine.close()
            if version is not None and version.isdigit() and int(version) > SCHEMA_VERSION:
                raise StorageError(
                    f"{engine.location} has schema {version}, newer than this gwvault knows"
                    f" (schema {SCHEMA_VERSION}); upgrade gwvault on this machine before it"
                    " uses the vault"
                )
            raise StorageError(
                f"{engine.location} has schema {version!r}; this gwvault reads {SCHEMA_VERSION}"
            )
        return store

    @property
    def engine_kind(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.kind

    @property
    def engine(self) -> StoreEngine:
        return self._engine

    def _upgrade(self, from_version: int) -> None:
        upgrades = UPGRADES if self._engine.kind == "sqlite" else POSTGRES_UPGRADES
        for version in range(from_version + 1, SCHEMA_VERSION + 1):
            for statement in upgrades[version]:
                self.execute(statement, [])
        if from_version < 3:
            self._chain_entries_written_before_the_chain()
        if from_version < 4:
            self.set_setting(ROWS_UNSEALED, "1")  # vault.access.row_seal seals them once
        self.set_setting("schema_version", str(SCHEMA_VERSION))

    def snapshot(self, scratch: Path) -> bytes:
        """A consistent copy of the whole database (``scratch``: a private path to use)."""
        return self._engine.snapshot(scratch)

    def close(self) -> None:
        self._engine.close()

    def end_transaction(self) -> bool:
        """Roll back a transaction left open (a caller that raised mid-write);
        True if there was one.  For a connection kept across requests."""
        return self._engine.end_transaction()

    def is_opened_file(self) -> bool:
        """Whether the database file is still the one opened, and still private."""
        return self._engine.is_opened_file()

    def facts_generation(self) -> int:
        """The number every change of a key, certificate or setting row bumps
        (schema 5's triggers), in the same transaction: cached facts read at
        one generation hold while it stays (``vault.gateway_facts``)."""
        rows = self._engine.tuples("SELECT generation FROM facts_generation WHERE id = 1", [])
        if not rows:
            raise StorageError(f"{self.location} lacks its facts generation; it is damaged")
        return int(rows[0][0])

    def write(self) -> AbstractContextManager[None]:
        """One atomic write transaction; nested use joins the outer one."""
        return self._engine.write()

    def reading(self) -> AbstractContextManager[None]:
        """One consistent view for several reads (writers go on meanwhile).
        Inside a write it is that write's view."""
        return self._engine.reading()

    @property
    def in_write(self) -> bool:
        return self._engine.in_write

    @property
    def in_write_transaction(self) -> bool:
        """Whether the open transaction may hold uncommitted changes (a write,
        or a read snapshot a write joined); ``in_write`` is any transaction."""
        return self._engine.in_write_transaction

    # -- settings ---------------------------------------------------------

    def setting(self, key: str) -> str | None:
        rows = self.rows("SELECT value FROM settings WHERE key = ?", [key])
        return str(rows[0]["value"]) if rows else None

    def set_setting(self, key: str, value: str) -> None:
        # The row's seal (mac) is cleared with the value, as a replaced row's was.
        self.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value, mac = NULL",
            [key, value],
        )

    def delete_setting(self, key: str) -> None:
        self.execute("DELETE FROM settings WHERE key = ?", [key])

    # -- keys ---------------------------------------------------------------

    def add_master_key(self, record: MasterKeyRecord) -> None:
        self.insert_row("master_keys", asdict(record))

    def master_key(self, version: int) -> MasterKeyRecord | None:
        rows = self.rows("SELECT * FROM master_keys WHERE version = ?", [version])
        return MasterKeyRecord(**rows[0]) if rows else None

    def current_master_key(self) -> MasterKeyRecord | None:
        rows = self.rows("SELECT * FROM master_keys WHERE state = 'current'", [])
        return MasterKeyRecord(**rows[0]) if rows else None

    def rebind_master_key(self, version: int, keystore_wrapped: bytes) -> None:
        """Replace the keystore wrap of one GMK version (keystore migration)."""
        self.execute(
            "UPDATE master_keys SET keystore_wrapped = ? WHERE version = ?",
            [keystore_wrapped, version],
        )

    def add_gateway_key(self, record: GatewayKeyRecord) -> None:
        self.insert_row("gateway_keys", asdict(record))

    def gateway_keys(self) -> list[GatewayKeyRecord]:
        """Every gateway key pair version still held, current first."""
        rows = self.rows(
            f"SELECT {_GATEWAY_KEY_COLUMNS} FROM gateway_keys"  # noqa: S608 - fixed column list
            " ORDER BY state = 'current' DESC, version DESC",
            [],
        )
        return [GatewayKeyRecord(**row) for row in rows]

    # -- credentials ----------------------------------------------------------

    def credential(self, name: str) -> CredentialRecord | None:
        rows = self.rows(f"SELECT {_CREDENTIAL_COLUMNS} FROM credentials WHERE name = ?", [name])  # noqa: S608 - fixed column list
        return _credential_from_row(rows[0], self._gateway_id) if rows else None

    def credentials(self, *, deleted: bool = False) -> list[CredentialRecord]:
        """The credentials not deleted (``deleted``: those deleted), by name."""
        rows = self.rows(
            f"SELECT {_CREDENTIAL_COLUMNS} FROM credentials WHERE {_deleted(deleted)}"  # noqa: S608 - fixed column list
            " ORDER BY name",
            [],
        )
        return [_credential_from_row(row, self._gateway_id) for row in rows]

    def credential_page(
        self, *, after: str | None, before: str | None, limit: int, deleted: bool = False
    ) -> list[CredentialRecord]:
        """Up to ``limit`` credentials in name order: those after ``after`` (from
        the first when both are None), or the last ones before ``before``; of
        those not deleted, or (``deleted``) of those deleted."""
        state = _deleted(deleted)
        if before is not None:
            rows = self.rows(
                f"SELECT {_CREDENTIAL_COLUMNS} FROM credentials WHERE name < ? AND {state}"  # noqa: S608 - fixed column list
                " ORDER BY name DESC LIMIT ?",
                [before, limit],
            )
            rows.reverse()
        else:
            rows = self.rows(
                f"SELECT {_CREDENTIAL_COLUMNS} FROM credentials WHERE name > ? AND {state}"  # noqa: S608 - fixed column list
                " ORDER BY name LIMIT ?",
                [after or "", limit],
            )
        return [_credential_from_row(row, self._gateway_id) for row in rows]

    def has_credential_beyond(self, name: str, *, after: bool, deleted: bool = False) -> bool:
        """Whether a credential's name (deleted or not) sorts after (or before) ``name``."""
        beyond = "name > ?" if after else "name < ?"
        sql = f"SELECT 1 FROM credentials WHERE {beyond} AND {_deleted(deleted)} LIMIT 1"  # noqa: S608 - fixed fragments
        return bool(self.rows(sql, [name]))

    def count_credentials(self) -> int:
        """The credential rows, counted (what a rotation decides and reports from)."""
        return int(self.rows("SELECT count(*) AS n FROM credentials", [])[0]["n"])

    def count_deleted_credentials(self) -> int:
        """Deleted credentials awaiting their purge (an index range: the partial
        index of schema 7 holds only them)."""
        sql = "SELECT count(*) AS n FROM credentials WHERE purge_after IS NOT NULL"
        return int(self.rows(sql, [])[0]["n"])

    def credential_counts(self) -> dict[int, int]:
        """Credentials per GMK version as the schema-5 triggers keep them: for
        display only (a database writer can edit them); rows of the wrong type
        are left out rather than failing a status page."""
        rows = self.tuples("SELECT gmk_version, n FROM credential_counts ORDER BY gmk_version", [])
        return {
            version: n
            for version, n in rows
            if type(version) is int and type(n) is int and n > 0  # SQLite stores any type
        }

    def save_credential(self, record: CredentialRecord) -> None:
        """Insert, or replace the row with the same id (an update)."""
        self.execute(_SAVE_CREDENTIAL, _credential_row(record))

    def delete_credential(self, credential_id: str) -> None:
        self.execute("DELETE FROM credentials WHERE id = ?", [credential_id])

    # -- audit ------------------------------------------------------------------

    def audit_tail(self) -> tuple[int, bytes] | None:
        """Sequence number and digest of the last entry, if there is one."""
        rows = self.rows("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1", [])
        return (int(rows[0]["seq"]), bytes(rows[0]["hash"])) if rows else None

    def append_audit(self, entry: AuditEntry) -> None:
        """Append one chained entry inside the current write."""
        if not self.in_write:
            raise StorageError("an audit entry must be written in the change's transaction")
        try:
            self._engine.execute(
                f"INSERT INTO audit_events ({_AUDIT_COLUMNS}) VALUES ({_AUDIT_PLACEHOLDERS})",  # noqa: S608 - fixed column list
                [getattr(entry, column) for column in _AUDIT_FIELDS],
            )
            self._engine.before_commit.pending = True
        except (ConflictError, StorageError) as e:
            # Fail closed: the caller's change rolls back with this error.  The
            # driver's own words say why (a full disk, a trigger's refusal).
            raise StorageError(
                f"the audit entry could not be written to {self.location} ({e.__cause__ or e});"
                " nothing was changed"
            ) from e

    def forward_audit_with(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` inside each transaction that appended audit entries, just
        before it commits (``vault.audit.sinks.forwarding``); what it raises
        rolls the transaction back."""
        self._engine.before_commit.hook = hook

    def after_rollback(self, note: Callable[[], None]) -> None:
        """Run ``note`` in a write of its own once the open transaction has rolled
        back (``BeforeCommit.after_rollback``)."""
        self._engine.before_commit.after_rollback(note)

    def audit_entries(self, after_seq: int = 0, page: int = 5000) -> Iterator[AuditEntry]:
        """Every entry after ``after_seq`` in order, read page by page (a trail may
        hold millions); call inside ``reading()`` for one consistent view."""
        while True:
            batch = self._audit_rows(
                f"SELECT {_AUDIT_COLUMNS} FROM audit_events WHERE seq > ?"  # noqa: S608 - fixed column list
                " ORDER BY seq LIMIT ?",
                [after_seq, page],
            )
            yield from batch
            if len(batch) < page:
                return
            after_seq = batch[-1].seq

    def audit_events(self) -> list[AuditEntry]:
        return list(self.audit_entries())

    def find_audit(
        self, where: str, params: list[Any], limit: int, *, oldest_first: bool = False
    ) -> list[AuditEntry]:
        """Entries matching a WHERE clause the audit log composes from fixed
        fragments (never from input); newest first unless ``oldest_first``."""
        order = "ASC" if oldest_first else "DESC"
        return self._audit_rows(
            f"SELECT {_AUDIT_COLUMNS} FROM audit_events WHERE {where}"  # noqa: S608 - fixed fragments, bound values
            f" ORDER BY seq {order} LIMIT ?",
            [*params, limit],
        )

    def audit_actions_with_prefix(self, prefix: str, most: int = 256) -> list[str] | None:
        """The distinct actions that start with ``prefix`` (which ends in "."), one
        index probe each; None when there are more than ``most`` (gwvault writes a
        few dozen kinds: more came from a database writer)."""
        # "." + 1 is "/": every action with the prefix sorts in [prefix, end).
        end = prefix[:-1] + "/"
        first = "SELECT min(action) AS a FROM audit_events WHERE action >= ? AND action < ?"
        found: list[str] = []
        while len(found) <= most:
            sql = first if not found else first.replace("action >= ?", "action > ?")
            action = self.rows(sql, [found[-1] if found else prefix, end])[0]["a"]
            if action is None:
                return found
            found.append(str(action))
        return None

    def _audit_rows(self, sql: str, params: list[Any]) -> list[AuditEntry]:
        # Plain tuples in AuditEntry's field order: verifying a million entries
        # should spend its time hashing, not building dicts.
        entries = []
        for (
            seq,
            at,
            actor,
            channel,
            action,
            target,
            outcome,
            rid,
            details,
            *chain,
        ) in self._engine.tuples(sql, params):
            prev_hash, digest, mac = chain
            entry = AuditEntry(
                seq, at, actor, channel, action, target, outcome, rid, details,
                prev_hash=prev_hash or b"", hash=digest or b"", mac=mac,
            )  # fmt: skip
            entries.append(entry)
        return entries

    def add_audit_checkpoint(self, checkpoint: Checkpoint, cert_pem: str) -> None:
        self.insert_row("audit_checkpoints", asdict(checkpoint))
        self.execute(
            "INSERT INTO audit_signers (thumbprint, cert_pem) VALUES (?, ?)"
            " ON CONFLICT (thumbprint) DO NOTHING",
            [checkpoint.thumbprint, cert_pem],
        )

    def audit_checkpoints(self, after_seq: int = 0) -> list[Checkpoint]:
        rows = self.rows(
            "SELECT seq, head, at, reason, thumbprint, signature FROM audit_checkpoints"
            " WHERE seq > ? ORDER BY seq, id",
            [after_seq],
        )
        return [Checkpoint(**row) for row in rows]

    def add_audit_rotation(self, rotation: Rotation, from_pem: str, to_pem: str) -> None:
        """Store a rotation record and both its certificates (kept for good, so
        the trust it carries can be followed in every later export)."""
        self.insert_row("audit_rotations", asdict(rotation))
        ends = ((rotation.from_thumbprint, from_pem), (rotation.to_thumbprint, to_pem))
        for thumbprint, pem in ends:
            self.execute(
                "INSERT INTO audit_signers (thumbprint, cert_pem) VALUES (?, ?)"
                " ON CONFLICT (thumbprint) DO NOTHING",
                [thumbprint, pem],
            )

    def audit_rotations(self) -> list[Rotation]:
        rows = self.rows(
            "SELECT seq, head, at, from_thumbprint, to_thumbprint, from_signature, to_signature"
            " FROM audit_rotations ORDER BY seq",
            [],
        )
        return [Rotation(**row) for row in rows]

    def last_audit_checkpoint_seq(self) -> int:
        rows = self.rows("SELECT coalesce(max(seq), 0) AS seq FROM audit_checkpoints", [])
        return int(rows[0]["seq"])

    def audit_signers(self) -> dict[str, str]:
        """Certificate PEM of every key that signed a checkpoint, by thumbprint."""
        rows = self.rows("SELECT thumbprint, cert_pem FROM audit_signers", [])
        return {row["thumbprint"]: row["cert_pem"] for row in rows}

    def prune_audit(self, through_seq: int) -> int:
        """Delete entries up to ``through_seq`` (a signed prune checkpoint there
        must already be written: the triggers allow nothing else)."""
        count = self.rows("SELECT count(*) AS n FROM audit_events WHERE seq <= ?", [through_seq])[
            0
        ]["n"]
        self.execute("DELETE FROM audit_events WHERE seq <= ?", [through_seq])
        self.execute("DELETE FROM audit_checkpoints WHERE seq < ?", [through_seq])
        return int(count)

    def _chain_entries_written_before_the_chain(self) -> None:
        """Schema 3: give entries written before it their digests (no MAC:
        no key is unlocked when a vault is opened), so the chain covers them,
        and leave word that the audit key is still to be made (vault.audit.trail)."""
        self.set_setting(AUDIT_KEY_PENDING, "1")
        gateway_id = self.setting("gateway_id")
        prev = genesis(gateway_id) if gateway_id is not None else b""
        for row in self.rows(f"SELECT {_AUDIT_COLUMNS} FROM audit_events ORDER BY seq", []):  # noqa: S608 - fixed column list
            fields = AuditFields(**{key: row[key] for key in _AUDIT_FIELDS[:9]})
            digest = entry_digest(prev, fields)
            self.execute(
                "UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?",
                [prev, digest, fields.seq],
            )
            prev = digest

    # -- plumbing -----------------------------------------------------------------

    def rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        """Run a query (``?`` placeholders) through the engine."""
        return self._engine.rows(sql, params)

    def tuples(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """Run a query (``?`` placeholders); rows as tuples in column order."""
        return self._engine.tuples(sql, params)

    def execute(self, sql: str, params: list[Any]) -> None:
        """Run a write statement (``?`` placeholders) through the engine."""
        self._engine.execute(sql, params)

    def insert_row(self, table: str, row: dict[str, Any]) -> None:
        """Insert one row; ``table`` and the keys are the store's own names."""
        self._engine.insert(table, row)

    @functools.cached_property
    def _gateway_id(self) -> str:
        # Credential rows do not repeat the gateway id; it is bound into their
        # AAD from the one setting, written at init before any credential.
        gateway_id = self.setting("gateway_id")
        if gateway_id is None:
            raise StorageError(
                f"{self.location} has no gateway id: the vault was never initialised"
            )
        return gateway_id


def _deleted(deleted: bool) -> str:
    """The condition on a credential row: deleted, or not."""
    return "deleted_at IS NOT NULL" if deleted else "deleted_at IS NULL"


def _credential_row(record: CredentialRecord) -> list[Any]:
    b, s = record.binding, record.sealed
    return [
        b.credential_id, b.name, b.version, b.type, b.server, b.database, b.auth, b.username,
        s.gmk_version, s.wrapped_dek, s.ciphertext, record.created_at, record.updated_at,
        record.owner, record.issued_at, record.mac, b.binding_version,
        # A version-1 binding has no TLS facts of its own: nothing to store.
        b.tls if b.binding_version != 1 else None, b.ca_pem if b.binding_version != 1 else None,
        *record.life.columns().values(),
    ]  # fmt: skip


def _credential_from_row(row: dict[str, Any], gateway_id: str) -> CredentialRecord:
    binding_version = row["binding_version"]
    tls: str
    if binding_version == 1:
        # Not bound into a version-1 AAD, so not believed: a writer who sets the
        # columns changes nothing, every such row gets the legacy mode (T-AR-4).
        tls, ca_pem = LEGACY_TLS_MODE, None
    else:
        # Bound into the AAD: a changed value (or version) fails the open.
        tls, ca_pem = str(row["tls"] or ""), row["ca_pem"]
    return CredentialRecord(
        binding=CredentialBinding(
            gateway_id=gateway_id,
            credential_id=row["id"],
            name=row["name"],
            version=row["version"],
            type=row["type"],
            server=row["server"],
            database=row["database"],
            auth=row["auth"],
            username=row["username"],
            binding_version=binding_version,
            tls=tls,
            ca_pem=ca_pem,
        ),
        sealed=SealedSecret(row["gmk_version"], row["wrapped_dek"], row["ciphertext"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        owner=row["owner"],
        issued_at=row["issued_at"],
        mac=bytes(row["mac"]) if row["mac"] is not None else None,
        life=CredentialLife(**{field.name: row[field.name] for field in fields(CredentialLife)}),
    )
