from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from agent_keys.errors import StorageError
from tests.conftest import make_context
from tests.vault.store.old_schemas import rewind_schema, store_version_1_credential
from vault.format.audit_chain import AuditEntry
from vault.gateway import Gateway
from vault.store.schema import SCHEMA_VERSION
from vault.store.vault_store import VaultStore


def test_the_audit_table_is_append_only(data_dir: Path) -> None:
    with sqlite3.connect(data_dir / "vault.db") as db:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE audit_events SET actor = 'someone-else'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM audit_events")


def test_an_audit_entry_outside_a_write_transaction_is_refused(data_dir: Path) -> None:
    store = VaultStore.open(data_dir / "vault.db")
    try:
        with pytest.raises(StorageError, match="transaction"):
            store.append_audit(
                AuditEntry(1, "t", "a", "cli", "x", None, "ok", "r", "{}", b"", b"", None)
            )
    finally:
        store.close()


def test_a_database_of_another_schema_version_is_refused(data_dir: Path) -> None:
    with sqlite3.connect(data_dir / "vault.db") as db:
        db.execute("UPDATE settings SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StorageError, match="schema"):
        Gateway.open(data_dir, make_context())


def test_a_failed_write_rolls_back_everything_in_it(gateway: Gateway) -> None:
    before = len(gateway.store.audit_events())
    with pytest.raises(RuntimeError), gateway.store.write():
        gateway.audit.record("test.step", None)
        raise RuntimeError("the change failed half-way")
    assert len(gateway.store.audit_events()) == before


def test_a_schema_1_vault_is_upgraded_on_open_and_keeps_its_credentials(data_dir: Path) -> None:
    from agent_keys.secret import Secret
    from vault.credentials import CredentialService
    from vault.format.data_source import DataSource

    with Gateway.open(data_dir, make_context()) as gateway:
        secret = Secret.from_text("pw-before-upgrade")
        store_version_1_credential(gateway, "sales", DataSource("mysql", "db"), "u", secret)
        master_key = gateway.master_key
    rewind_schema(data_dir / "vault.db", 1, master_key)
    with Gateway.open(data_dir, make_context()) as gateway:
        assert gateway.store.setting("schema_version") == str(SCHEMA_VERSION)
        assert CredentialService(gateway).use("sales", "job").secret == Secret.from_text(
            "pw-before-upgrade"
        )
        assert gateway.store.rows("SELECT count(*) AS n FROM users", [])[0]["n"] == 0


def test_a_schema_3_vault_keeps_its_credentials_with_the_legacy_tls_mode(data_dir: Path) -> None:
    # Rows from before TLS policies are binding version 1: they open as before,
    # with the fixed legacy mode, whatever a writer later puts in the new columns.
    from agent_keys.secret import Secret
    from vault.credentials import CredentialService
    from vault.format.data_source import DataSource

    with Gateway.open(data_dir, make_context()) as gateway:
        secret = Secret.from_text("pw-from-schema-3")
        source = DataSource("postgresql", "db.internal:5432", "sales")
        store_version_1_credential(gateway, "sales", source, "alice", secret)
        master_key = gateway.master_key
    rewind_schema(data_dir / "vault.db", 2, master_key)
    with Gateway.open(data_dir, make_context()) as gateway:
        assert gateway.store.setting("schema_version") == str(SCHEMA_VERSION)
        gateway.store.execute("UPDATE credentials SET tls = 'disable'", [])
        login = CredentialService(gateway).use("sales", "job")
        assert login.secret == secret
        assert (login.source.tls, login.source.ca_pem) == ("prefer", None)
        assert CredentialService(gateway).get("sales").metadata()["tls"] == "prefer"


def _journal_mode(db_path: Path) -> str:
    with sqlite3.connect(db_path) as db:
        return str(db.execute("PRAGMA journal_mode").fetchone()[0])


def test_a_new_vault_is_in_wal_mode_and_commits_durably(data_dir: Path) -> None:
    assert _journal_mode(data_dir / "vault.db") == "wal"
    with Gateway.open(data_dir, make_context()) as gateway:
        # FULL: in WAL mode each commit syncs the log (NORMAL would not).
        assert gateway.store.rows("PRAGMA synchronous", [])[0]["synchronous"] == 2
        assert gateway.store.facts_generation() >= 1


def test_a_schema_4_vault_gets_the_facts_generation_and_wal_once_upgraded(
    data_dir: Path,
) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        master_key = gateway.master_key
        thumbprint = gateway.certificate().thumbprint
    rewind_schema(data_dir / "vault.db", 4, master_key)
    db = sqlite3.connect(data_dir / "vault.db", isolation_level=None)
    assert db.execute("PRAGMA journal_mode = DELETE").fetchone() == ("delete",)  # as VACUUM INTO
    db.close()
    with Gateway.open(data_dir, make_context()) as gateway:
        assert gateway.store.setting("schema_version") == str(SCHEMA_VERSION)
        start = gateway.store.facts_generation()
        assert gateway.certificate().thumbprint == thumbprint
        gateway.rows.set_setting("endpoint_port", "8443")
        assert gateway.store.facts_generation() > start
    assert _journal_mode(data_dir / "vault.db") == "wal"


def test_checking_a_credential_does_not_walk_the_entries_of_its_uses(data_dir: Path) -> None:
    # Work is counted in SQLite VM steps, not timed: a busy credential's check
    # (the newest created/updated entry of its name) must not grow with its uses.
    from agent_keys.secret import Secret
    from vault.credentials import CredentialService
    from vault.format.data_source import DataSource
    from vault.format.encrypted_credential import CredentialPayload

    with Gateway.open(data_dir, make_context()) as gateway:
        service = CredentialService(gateway)
        payload = CredentialPayload("basic", "u", Secret.from_text("pw"))
        service.put("sales", DataSource("mysql", "db"), payload)
        before = _vm_steps(gateway, lambda: service.get("sales"))
        with sqlite3.connect(data_dir / "vault.db") as db:
            db.executemany(
                "INSERT INTO audit_events (at, actor, channel, action, target, outcome,"
                " request_id, details) VALUES ('t', 'agent:a', 'agent', 'credential.used',"
                " 'sales', 'ok', ?, '{}')",
                [(f"job-{n}",) for n in range(5000)],
            )
        after = _vm_steps(gateway, lambda: service.get("sales"))
    assert after < before * 2, (before, after)


def _vm_steps(gateway: Gateway, call: Callable[[], object]) -> int:
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    conn = gateway.store._engine._db.conn  # type: ignore[attr-defined]
    conn.set_progress_handler(count, 1)
    try:
        call()
    finally:
        conn.set_progress_handler(None, 0)
    return steps[0]
