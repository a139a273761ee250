"""Sealing the rows that decide access, and refusing one whose seal is broken.

Someone who can write ``vault.db`` but holds no key could otherwise insert an
``api_tokens`` row and hold an admin token, promote a user, swap the gateway
certificate sealers are handed, change a credential's owner or point the
endpoint at 0.0.0.0, and none of it would show (the trust review, item 4;
T-DB-1).  Each such row carries a MAC (``vault.format.row_mac``) over the
columns in ``SEALED_COLUMNS``; every write that changes one reseals it in the
same transaction (``reseal``), and every read that decides something checks
it (``check``).  A broken seal is ``TamperedRowError`` and an audit entry.

A vault upgraded from schema 3 has unsealed rows: they are sealed once, the
first time the key is at hand, and that is recorded (``integrity.rows-sealed``).
The flag that asks for it is honoured only while no such entry exists, so a
database writer cannot strip the seals and ask for new ones (the trail's MACs
stop them from deleting the entry; ``audit verify`` reports it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, Protocol, TypeVar

from agent_keys.errors import IntegrityError
from agent_keys.secret import Secret
from vault.audit.trail import AuditTrail
from vault.format.audit_chain import AuditEntry, entry_digest, entry_mac, macs_equal
from vault.format.row_mac import RowValue, row_key, row_mac, row_mac_ok
from vault.format.strict_json import parse_json_object
from vault.store.vault_store import ROWS_UNSEALED, VaultStore

SEALED_COLUMNS: dict[str, tuple[str, ...]] = {
    "users": ("name", "role", "password_hash"),
    "api_tokens": ("name", "role", "token_hash", "created_by", "revoked_at"),
    "entry_links": ("id", "datasource", "link_hash", "created_by", "expires_at", "used_at",
                    "type", "server", "database", "tls", "ca_pem", "tests_used"),
    "web_sessions": ("id_hash", "user_name", "csrf_token", "expires_at"),
    "credentials": ("id", "name", "version", "owner", "issued_at"),
    "gateway_keys": ("version", "key_type", "cert_pem", "thumbprint", "state"),
    "settings": ("key", "value"),
    "members": ("id", "name", "keystore_kind", "public_key", "wrapped_private_key", "state",
                "epoch"),
    "notify_sinks": ("id", "name", "kind", "config", "created_at"),
    "audit_sinks": ("id", "name", "kind", "policy", "config", "created_at"),
    "credential_status": ("credential_id", "name", "version", "tested_at", "reason", "detail",
                          "server_expires_at", "next_due_at", "changed_at"),
}  # fmt: skip
LATER_SEALED_COLUMNS: dict[str, tuple[str, ...]] = {
    "credentials": ("disabled_at", "deleted_at", "purge_after", "expires_at", "rotate_every",
                    "contact"),
}  # fmt: skip
"""Columns added to a sealed table after its rows were first sealed: each is in
the MAC only while it holds a value, so a row sealed before the column existed
keeps its seal, and setting or clearing the value breaks it (the MAC names each
column it covers, so a column left out cannot pass for one holding NULL)."""
ROW_KEYS = {
    "users": "name",
    "api_tokens": "name",
    "entry_links": "id",
    "web_sessions": "id_hash",
    "credentials": "id",
    "gateway_keys": "version",
    "settings": "key",
    "members": "id",
    "notify_sinks": "id",
    "audit_sinks": "id",
    "credential_status": "credential_id",
}
SEALED_SETTINGS = frozenset(
    {
        "endpoint_host",
        "endpoint_port",
        "endpoint_allow_remote",
        "sealed_max_age_seconds",
        "tests_allowed_networks",
        "tests_sqlite_dirs",
        "credentials_retention_days",
        "health_run_requested_at",
        "health_check_every_seconds",
        "health_check_concurrency",
        "proxy",
        "metrics_token_hash",
        "metrics_per_credential",
    }
)
"""The settings that decide where the endpoint listens, what it accepts, how
long a deleted credential is kept, how often credentials are tested, which
proxy gwvault's HTTPS traffic goes through, and who may scrape the metrics and
whether they name credentials."""
T = TypeVar("T")

SEALED_ACTION = "integrity.rows-sealed"
ROWS_SEALED_AT_INIT = "rows_sealed"
"""A detail of ``gateway.initialized``: the vault was made with sealed rows."""
REFUSED_ACTION = "integrity.row-refused"
_HELD_FACT = "rows_seen_to_hold"
_HELD_MOST = 20_000
"""Rows ``holds`` remembers at most (a few MB): past it, it verifies each time."""


class TamperedRowError(IntegrityError):
    """A sealed row whose MAC does not verify: written by someone without the key."""

    def __init__(self, table: str, key: object) -> None:
        super().__init__(
            f"the vault database's {table} row {_shown(key)} was changed outside gwvault; it is"
            " not trusted (see: gwvault audit list --action integrity.*)"
        )
        self.table, self.key = table, _shown(key)


class SealedVault(Protocol):
    """What the seal needs of an opened vault (``vault.gateway.Gateway``)."""

    store: VaultStore
    audit: AuditTrail

    @property
    def gateway_id(self) -> str: ...

    def cached_fact(self, name: str, load: Callable[[], T]) -> T: ...


class RowSeal:
    """Seals and checks the security-relevant rows of one opened vault."""

    def __init__(self, vault: SealedVault) -> None:
        self._vault = vault

    def columns(self, table: str) -> str:
        """The SELECT list a checked read of ``table`` needs (sealed columns and ``mac``)."""
        return ", ".join((*SEALED_COLUMNS[table], *LATER_SEALED_COLUMNS.get(table, ()), "mac"))

    def reseal(self, table: str, key: RowValue) -> None:
        """Give the row ``key`` of ``table`` its MAC; call inside the write that changed it."""
        store, key_column = self._vault.store, ROW_KEYS[table]
        rows = store.rows(
            f"SELECT {self.columns(table)} FROM {table} WHERE {key_column} = ?",  # noqa: S608 - fixed names
            [key],
        )
        if rows:
            store.execute(
                f"UPDATE {table} SET mac = ? WHERE {key_column} = ?",  # noqa: S608 - fixed names
                [self._mac(table, rows[0]), key],
            )

    def sealed(self, table: str, row: Mapping[str, Any]) -> bytes:
        """The MAC for ``row`` (its sealed columns) of ``table``, for a row about to be written."""
        return self._mac(table, row)

    def check(self, table: str, row: Mapping[str, Any]) -> None:
        """Refuse (``TamperedRowError``, recorded) a row read with ``columns(table)``
        whose MAC does not verify."""
        gateway_id = self._vault.gateway_id
        try:
            fields = _sealed_fields(table, row)
            if row_mac_ok(self._key, gateway_id, table, fields, _bytes(row["mac"])):
                return
        except TypeError:  # a value of a type gwvault never writes (a REAL, say)
            self._refuse(TamperedRowError(table, row[ROW_KEYS[table]]))
        if row["mac"] is None and (self._seal_pending() or self._sealed_since(table, row)):
            return  # sealed just now, with every other row written before schema 4
        self._refuse(TamperedRowError(table, row[ROW_KEYS[table]]))

    def holding(self) -> Callable[[str, Mapping[str, Any]], bool]:
        """For one read that only counts (``vault.metrics``): whether a row's MAC
        verifies, recording nothing, since a refusal entry per scrape would
        flood the trail; whatever decides on the row still ``check``s it.

        A row seen to hold is remembered, whole, for as long as the row key is
        kept (``cached_fact``): the same fields and MAC under the same key
        verify the same way again, so a scrape every few seconds recomputes
        only the MACs of rows that changed.  A row that fails is never
        remembered, so it is checked each time.
        """
        held: dict[tuple[Any, ...], None] = self._vault.cached_fact(_HELD_FACT, dict)

        def holds(table: str, row: Mapping[str, Any]) -> bool:
            try:
                fields = _sealed_fields(table, row)
                seen = (table, tuple(fields.items()), _bytes(row["mac"]))
                if seen in held:
                    return True
                ok = row_mac_ok(self._key, self._vault.gateway_id, table, fields, seen[2])
            except TypeError:  # a value of a type gwvault never writes
                return False
            if ok and len(held) < _HELD_MOST:
                held[seen] = None
            return ok

        return holds

    def _sealed_since(self, table: str, row: Mapping[str, Any]) -> bool:
        """Whether a row read without a MAC was sealed after it was read: the
        read itself can lead there (a cluster member's first use of the audit
        key checks its member row, which seals every row of a just-upgraded
        vault).  True only when the row as stored now has these same fields
        and a MAC that verifies."""
        key_column = ROW_KEYS[table]
        rows = self._vault.store.rows(
            f"SELECT {self.columns(table)} FROM {table} WHERE {key_column} = ?",  # noqa: S608 - fixed names
            [row[key_column]],
        )
        if len(rows) != 1 or rows[0]["mac"] is None:
            return False
        stored = _sealed_fields(table, rows[0])
        same = stored == _sealed_fields(table, row)
        gateway_id = self._vault.gateway_id
        return same and row_mac_ok(self._key, gateway_id, table, stored, _bytes(rows[0]["mac"]))

    def _refuse(self, error: TamperedRowError) -> NoReturn:
        if not self._vault.store.in_write:
            record_refusal(self._vault.audit, error)
        raise error  # inside a transaction, the caller records it after the rollback

    def check_current(
        self,
        table: str,
        key: object,
        target: str,
        actions: tuple[str, ...],
        agrees: Callable[[str, dict[str, Any]], bool],
        *,
        link_id: str | None = None,
        holding: str | None = None,
    ) -> None:
        """Refuse (``TamperedRowError``) a row the trail says is out of date.

        An older copy of a row put back in the file carries a valid old seal;
        the newest MACed entry for ``target`` among ``actions`` (``agrees`` gets
        its action and details) tells the two apart.  No entry (pruned): no verdict.
        """
        latest = self.latest_audited(target, actions, link_id=link_id, holding=holding)
        if latest is not None and not agrees(*latest):
            self._refuse(TamperedRowError(table, key))

    def latest_audited(
        self,
        target: str,
        actions: tuple[str, ...],
        *,
        link_id: str | None = None,
        holding: str | None = None,
    ) -> tuple[str, dict[str, Any]] | None:
        """The action and details of the newest MACed entry for ``target`` among
        ``actions`` (and, given ``link_id``, naming that entry link; given
        ``holding``, a fixed fragment of canonical JSON, whose details hold it);
        None when there is none.  ``TamperedRowError`` when that entry itself
        does not verify.
        """
        marks = ", ".join("?" * len(actions))
        where, params = f"target = ? AND action IN ({marks})", [target, *actions]
        if link_id is not None:
            # Ids are UUIDs (no LIKE wildcards); details are canonical JSON.
            where, params = where + " AND details LIKE ?", [*params, f'%"link_id":"{link_id}"%']
        if holding is not None:
            where, params = where + " AND details LIKE ?", [*params, f"%{holding}%"]
        # The newest by max(seq) over (target, action, seq): ordering the
        # target's entries by seq walked every one of them (each agent use of
        # a credential), so the check of a credential grew with its uses.
        entry = self.newest_entry(where, params)
        return None if entry is None else (entry.action, self.verified_details(entry))

    def newest_entry(self, where: str, params: list[Any]) -> AuditEntry | None:
        """The newest entry matching ``where`` (fixed fragments), not yet verified."""
        newest = f"seq = (SELECT max(seq) FROM audit_events WHERE {where})"  # noqa: S608 - fixed fragments
        found = self._vault.store.find_audit(newest, params, limit=1)
        return found[0] if found else None

    def audited_entry(self, seq: int) -> tuple[AuditEntry, dict[str, Any]] | None:
        """The entry ``seq`` and its details once its hash and MAC verify (None:
        no such entry); ``TamperedRowError`` when it does not verify."""
        found = self._vault.store.find_audit("seq = ?", [seq], limit=1)
        return (found[0], self.verified_details(found[0])) if found else None

    def verified_details(self, entry: AuditEntry) -> dict[str, Any]:
        """``entry``'s details, once its hash and MAC verify; ``TamperedRowError`` otherwise."""
        mac_key = self._vault.audit.mac_key()
        keyed = entry.seq >= mac_key.keyed_from
        digest = entry_digest(entry.prev_hash, entry)
        if not macs_equal(digest, entry.hash) or (
            keyed
            and (entry.mac is None or not macs_equal(entry_mac(mac_key.key, digest), entry.mac))
        ):
            raise TamperedRowError("audit_events", entry.seq)
        try:
            details = parse_json_object(entry.details)
        except ValueError as e:
            raise TamperedRowError("audit_events", entry.seq) from e
        return details

    def setting(self, key: str) -> str | None:
        """A sealed setting's value (None when unset); ``TamperedRowError`` if altered."""
        rows = self._vault.store.rows(
            f"SELECT {self.columns('settings')} FROM settings WHERE key = ?",  # noqa: S608 - fixed names
            [key],
        )
        if not rows:
            return None
        self.check("settings", rows[0])
        return str(rows[0]["value"])

    def set_setting(self, key: str, value: str) -> None:
        """Store a sealed setting; call inside the caller's write."""
        if key not in SEALED_SETTINGS:
            raise ValueError(f"{key} is not a sealed setting")
        self._vault.store.set_setting(key, value)
        self.reseal("settings", key)

    def seal_all_unsealed(self) -> dict[str, int]:
        """Seal every row without a MAC (a new vault, or one just upgraded to schema 4),
        inside the caller's write or its own; returns how many rows per table."""
        store, counts = self._vault.store, {}
        with store.write():
            for table, key_column in ROW_KEYS.items():
                where = f"mac IS NULL AND key IN ({', '.join('?' * len(SEALED_SETTINGS))})"
                params: list[Any] = sorted(SEALED_SETTINGS) if table == "settings" else []
                rows = store.rows(
                    f"SELECT {key_column} AS k FROM {table} WHERE "  # noqa: S608 - fixed names
                    + (where if table == "settings" else "mac IS NULL"),
                    params,
                )
                for row in rows:
                    self.reseal(table, row["k"])
                counts[table] = len(rows)
            store.delete_setting(ROWS_UNSEALED)
        return counts

    def _seal_pending(self) -> bool:
        """Seal the rows of a just-upgraded vault, once; False if that was done before."""
        store = self._vault.store
        if store.setting(ROWS_UNSEALED) is None:
            return False
        if self._sealed_before():
            return False  # sealed once already: the flag was planted
        with store.write():
            counts = self.seal_all_unsealed()
            self._vault.audit.record(SEALED_ACTION, self._vault.gateway_id, "ok", **counts)
        return True

    def _sealed_before(self) -> bool:
        """Whether the trail says this vault's rows were sealed already: at its init
        (schema 4 or later) or at an upgrade."""
        store = self._vault.store
        if store.rows("SELECT 1 FROM audit_events WHERE action = ? LIMIT 1", [SEALED_ACTION]):
            return True
        rows = store.rows(
            "SELECT details FROM audit_events WHERE action = 'gateway.initialized' LIMIT 1", []
        )
        try:
            return bool(rows) and ROWS_SEALED_AT_INIT in parse_json_object(rows[0]["details"])
        except ValueError:
            return True  # an unreadable entry proves nothing: honour no flag

    @functools.cached_property
    def _key(self) -> Secret:
        return self._vault.cached_fact("row_key", lambda: row_key(self._vault.audit.mac_key().key))

    def _mac(self, table: str, row: Mapping[str, Any]) -> bytes:
        return row_mac(self._key, self._vault.gateway_id, table, _sealed_fields(table, row))


def record_refusal(audit: AuditTrail, error: TamperedRowError) -> None:
    """The audit entry for a refused row (outside the transaction it was refused in)."""
    audit.record(REFUSED_ACTION, f"{error.table}:{error.key}", "refused", table=error.table)


def _sealed_fields(table: str, row: Mapping[str, Any]) -> dict[str, RowValue]:
    """The fields of ``row`` its MAC covers: every sealed column, and each later
    sealed column that holds a value."""
    fields = {column: _value(row[column]) for column in SEALED_COLUMNS[table]}
    for column in LATER_SEALED_COLUMNS.get(table, ()):
        if row.get(column) is not None:
            fields[column] = _value(row[column])
    return fields


def _value(value: Any) -> RowValue:
    return bytes(value) if isinstance(value, memoryview) else value


def _bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


def _shown(key: object) -> str:
    # A session's key is its id's hash: show a prefix, never a value that opens anything.
    return key.hex()[:12] if isinstance(key, bytes | memoryview) else str(key)[:80]
