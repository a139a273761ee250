"""Copying a vault between SQLite and PostgreSQL (vault.store.copying), on a real server.

The copy is checked row for row both ways, resumed after it was killed, and
refused before it starts when the target lacks a table; a PostgreSQL vault's
recovery bundle (its SQLite snapshot) restores on a single machine.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from agent_keys.errors import StorageError
from agent_keys.secret import Secret
from tests.conftest import make_context
from tests.store_targets import FilledVault, StoreTarget, make_schema, opened_through
from vault.access.accounts import Accounts
from vault.audit.log import AuditLog
from vault.credentials import CredentialService
from vault.data_dir import DB_FILE
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway
from vault.keys.keystore_binding import KeystoreSpec, no_pin
from vault.keys.relocation import export_bundle, restore_vault
from vault.keys.tls import TlsService
from vault.store import copying
from vault.store.catalog import table_names
from vault.store.copying import (
    MAINTAINED_BY_TARGET,
    copied_tables,
    copy_tables,
    sqlite_snapshot,
    table_digest,
)
from vault.store.engine import StoreEngine
from vault.store.postgres_engine import PostgresEngine
from vault.store.vault_store import AUDIT_KEY_PENDING, ROWS_UNSEALED, VaultStore


class Killed(Exception):
    """The copy's process dying midway, as far as the database can tell."""


@pytest.fixture
def source(filled: FilledVault) -> Iterator[VaultStore]:
    store = VaultStore.open(filled.path / DB_FILE)
    yield store
    store.close()


def assert_same_rows(one: StoreEngine, other: StoreEngine) -> None:
    for table in copied_tables(one, other):
        assert table_digest(one, table) == table_digest(other, table), table.name


def test_a_vault_goes_to_postgresql_and_back_row_for_row(
    source: VaultStore, target_db: PostgresEngine, tmp_path: Path
) -> None:
    make_schema(source.engine, target_db)
    with source.reading():
        copied = copy_tables(source.engine, target_db)

    order = list(copied)
    for first, then in [("master_keys", "credentials"), ("users", "web_sessions"),
                        ("members", "member_wraps"), ("master_keys", "audit_key")]:  # fmt: skip
        assert order.index(first) < order.index(then)
    assert not MAINTAINED_BY_TARGET & set(copied)
    assert copied["credentials"] == 3 and copied["web_sessions"] == 1
    assert_same_rows(source.engine, target_db)
    # The target's triggers counted the copied credentials once.
    assert VaultStore(target_db).credential_counts() == source.credential_counts() == {1: 3}

    # Back again: the SQLite file a recovery bundle would carry.
    scratch = tmp_path / "snapshot.db"
    snapshot = sqlite_snapshot(target_db, scratch)
    assert not list(tmp_path.glob("snapshot.db*"))  # read back and removed
    copy = VaultStore.create_from_snapshot(tmp_path / "copy.db", snapshot)
    try:
        assert_same_rows(source.engine, copy.engine)
        # Exactly the source's settings: none of a new file's own (schema_version once).
        keys = "SELECT key FROM settings ORDER BY key"
        assert copy.rows(keys, []) == source.rows(keys, [])
        assert not {ROWS_UNSEALED, AUDIT_KEY_PENDING} & {r["key"] for r in copy.rows(keys, [])}
        assert copy.credential_counts() == {1: 3}
    finally:
        copy.close()
    with closing(sqlite3.connect(tmp_path / "copy.db")) as db:
        assert db.execute("SELECT DISTINCT typeof(wrapped_dek) FROM credentials").fetchall() == [
            ("blob",)
        ]


def test_the_copy_serves_its_sealed_rows_and_numbers_the_next_checkpoint_after_its_own(
    filled: FilledVault, source: VaultStore, target_db: PostgresEngine
) -> None:
    make_schema(source.engine, target_db)
    with source.reading():
        copy_tables(source.engine, target_db)
    copied_ids = [row[0] for row in target_db.tuples("SELECT id FROM audit_checkpoints", [])]
    assert copied_ids == [1]
    with opened_through(filled.path, target_db) as gateway:
        # A session row (a blob key, a MAC over it) still holds where it now is.
        session = Accounts(gateway).session(filled.session_id)
        assert session is not None and session.principal.name == "ada"
        AuditLog(gateway).export(lambda lines: sum(1 for _ in lines))  # signs a checkpoint
        assert AuditLog(gateway).verify().ok
    numbered = "SELECT id FROM audit_checkpoints ORDER BY id"
    ids = [row[0] for row in target_db.tuples(numbered, [])]
    assert ids == [1, 2]


def test_a_copy_killed_midway_goes_on_when_run_again(
    source: VaultStore, target_db: PostgresEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(copying, "VALUES_PER_BATCH", 24)  # two audit entries per batch

    def killed_in_the_trail(table: str, rows: int) -> None:
        if table == "audit_events" and rows >= 4:
            raise Killed

    make_schema(source.engine, target_db)
    with source.reading(), pytest.raises(Killed):
        copy_tables(source.engine, target_db, progress=killed_in_the_trail)
    count = "SELECT count(*) FROM {}"
    assert target_db.tuples(count.format("audit_events"), [])[0][0] == 4  # two batches in
    assert target_db.tuples(count.format("credentials"), [])[0][0] == 0  # not reached

    with source.reading():
        again = copy_tables(source.engine, target_db)
    assert again["audit_events"] == source.audit_tail()[0]  # type: ignore[index]
    assert_same_rows(source.engine, target_db)
    assert VaultStore(target_db).credential_counts() == {1: 3}


def test_a_table_the_target_lacks_is_refused_before_anything_is_made(
    source: VaultStore, target_db: PostgresEngine
) -> None:
    with source.write():
        source.execute("CREATE TABLE gateway_notes (id INTEGER PRIMARY KEY, note TEXT)", [])
        source.execute("INSERT INTO gateway_notes (note) VALUES ('kept')", [])
    with pytest.raises(StorageError, match="has no table gateway_notes"):
        make_schema(source.engine, target_db)
    assert table_names(target_db) == set()  # the schema's transaction rolled back


def test_a_postgresql_vault_exports_a_recovery_bundle_that_restores(
    filled: FilledVault,
    source: VaultStore,
    target_db: PostgresEngine,
    recovery_key: Secret,
    tmp_path: Path,
) -> None:
    make_schema(source.engine, target_db)
    with source.reading():
        copy_tables(source.engine, target_db)
    with opened_through(filled.path, target_db) as gateway:
        bundle = export_bundle(gateway, recovery_key)
    assert not list(filled.path.glob(".bundle-*"))

    restored, report = restore_vault(
        tmp_path / "restored", bundle, recovery_key, make_context(),
        keystore=KeystoreSpec("file"), pin=no_pin,
    )  # fmt: skip
    with restored:
        assert (sorted(report.opened), report.failed) == (sorted(filled.credentials), [])
        service = CredentialService(restored)
        for name, secret in filled.credentials.items():
            assert service.use(name, "check").secret == Secret.from_text(secret)
        assert AuditLog(restored).verify().ok


def test_a_cluster_members_bundle_leaves_its_tls_identity_behind_and_restores(
    empty_store: StoreTarget, recovery_key: Secret, tmp_path: Path
) -> None:
    member = Gateway.initialize(
        tmp_path / "alpha", "gw-cluster", "ec-p256", recovery_key, make_context(),
        shared_store=empty_store.location, member_name="alpha",
    )  # fmt: skip
    with member:
        source = DataSource("postgresql", "127.0.0.1:5432", "sales")
        payload = CredentialPayload("basic", "ada", Secret.from_text("kept"))
        CredentialService(member).put("sales", source, payload)
        # The member's own TLS row is keyed by its id: no SQLite vault can hold it.
        assert [row["id"] for row in member.store.rows("SELECT id FROM tls_identity", [])] == [
            member.member_id
        ]
        bundle = export_bundle(member, recovery_key)

    restored, report = restore_vault(
        tmp_path / "restored", bundle, recovery_key, make_context(),
        keystore=KeystoreSpec("file"), pin=no_pin,
    )  # fmt: skip
    with restored:
        assert (report.opened, report.failed) == (["sales"], [])
        assert TlsService(restored).show()["source"] == "generated"  # its own, made at restore
        assert AuditLog(restored).verify().ok
