"""``gwvault store migrate`` through the installed command, into a real PostgreSQL.

A migration ends with the data dir switched over: this machine is the first
member of a cluster on the database (``switched``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from agent_keys.errors import IntegrityError
from agent_keys.gateway_identity import KeyType
from tests.conftest import make_context
from tests.store_targets import FilledVault, StoreTarget, make_schema, opened_through
from tests.vault.cli.gwvault_process import GwvaultCli, Run
from vault.data_dir import DB_FILE
from vault.keys.keystore_binding import no_pin
from vault.store.copying import copy_tables
from vault.store.locator import STORE_PASSWORD_FILE, ClusterMembership, write_membership
from vault.store.postgres_engine import PostgresEngine
from vault.store.vault_store import VaultStore
from vault.store_migration import MIGRATED_ACTION, migrate_to_shared_store, verify_copy


def migrate(data_dir: Path, store: StoreTarget, url: str | None = None) -> Run:
    cli = GwvaultCli(data_dir)
    run = cli("store", "migrate", "--to", url or store.url,
              "--store-password-file", store.password_file)  # fmt: skip
    assert not any(store.password in output for output in cli.outputs)
    return run


def switched(run: Run, data_dir: Path) -> bool:
    """The end of a migration: the data dir names the store, and the vault opens
    through it as the cluster's first member."""
    if run.code != 0 or not (data_dir / "cluster.json").exists():
        return False
    cli = GwvaultCli(data_dir)
    members = cli("cluster", "members", "--json").json()
    return (
        (data_dir / STORE_PASSWORD_FILE).exists()
        and [m["this_member"] for m in members] == [True]
        and cli("audit", "verify").code == 0
        and cli("credentials", "verify").code == 0
    )


def source_tail(data_dir: Path) -> tuple[int, bytes]:
    store = VaultStore.open(data_dir / DB_FILE)
    try:
        tail = store.audit_tail()
    finally:
        store.close()
    assert tail is not None
    return tail


def trail(engine: PostgresEngine) -> list[tuple[str, str]]:
    """(action, details) of every entry in the target, oldest first."""
    rows = engine.tuples("SELECT action, details FROM audit_events ORDER BY seq", [])
    return [(str(action), str(details)) for action, details in rows]


def copy_partly(data_dir: Path, target_db: PostgresEngine, tables: list[str] | None) -> None:
    """What an interrupted migrate leaves: the schema and some (or all) tables."""
    source = VaultStore.open(data_dir / DB_FILE)
    try:
        make_schema(source.engine, target_db)
        with source.reading():
            copy_tables(source.engine, target_db, tables)
    finally:
        source.close()


def test_migrate_copies_checks_records_and_switches_and_a_rerun_has_nothing_to_do(
    filled: FilledVault, empty_store: StoreTarget, target_db: PostgresEngine
) -> None:
    data_dir = filled.path
    before = source_tail(data_dir)
    first = migrate(data_dir, empty_store)
    assert switched(first, data_dir), first.err
    assert "copied" in first.out and "3 credentials open; audit trail OK" in first.out

    entries = trail(target_db)
    assert entries[before[0]][0] == MIGRATED_ACTION  # directly after the file's last entry
    assert entries[before[0] + 1][0] == "cluster.member-joined"
    details = json.loads(entries[before[0]][1])
    assert details["to"] == empty_store.display
    assert details["from"] == str((data_dir / DB_FILE).resolve())
    assert details["credentials"] == 3 and details["rows"] >= details["audit_entries"] > 0
    assert source_tail(data_dir) == before  # nothing was written to the file

    again = migrate(data_dir, empty_store)
    assert again.code == 1 and "nothing to migrate" in again.err
    assert [action for action, _ in trail(target_db)].count(MIGRATED_ACTION) == 1


def test_a_migration_interrupted_midway_goes_on(
    filled: FilledVault, empty_store: StoreTarget, target_db: PostgresEngine
) -> None:
    data_dir = filled.path
    copy_partly(data_dir, target_db, ["master_keys", "audit_events", "users"])
    assert target_db.tuples("SELECT count(*) FROM credentials", []) == [(0,)]
    run = migrate(data_dir, empty_store)
    assert switched(run, data_dir), run.err
    assert "3 credentials open" in run.out
    assert [action for action, _ in trail(target_db)].count(MIGRATED_ACTION) == 1


def test_a_target_changed_since_an_interrupted_run_is_refused(
    filled: FilledVault, empty_store: StoreTarget, target_db: PostgresEngine
) -> None:
    data_dir = filled.path
    copy_partly(data_dir, target_db, None)
    moved = "UPDATE credentials SET server = 'elsewhere:5432' WHERE name = 'sales-1'"
    target_db.execute(moved, [])
    run = migrate(data_dir, empty_store)
    assert run.code == 1 and "differs from" in run.err and "in credentials:" in run.err
    assert MIGRATED_ACTION not in [action for action, _ in trail(target_db)]


def test_a_database_already_serving_this_gateways_cluster_is_left_alone(
    filled: FilledVault, empty_store: StoreTarget, target_db: PostgresEngine
) -> None:
    data_dir = filled.path
    copy_partly(data_dir, target_db, None)
    target_db.execute(
        "INSERT INTO members (id, name, software_version, keystore_kind, public_key,"
        " wrapped_private_key, state, epoch, joined_at) VALUES"
        " ('m-1', 'gw-a', '1', 'file', ?, ?, 'enabled', 1, '2026-01-01T00:00:00+00:00')",
        [b"public", b"wrapped"],
    )
    before = trail(target_db)
    run = migrate(data_dir, empty_store)
    assert run.code == 1 and "already holds this gateway's cluster" in run.err
    assert "cluster join" in run.err and trail(target_db) == before


def test_the_checks_find_a_credential_that_does_not_open_and_an_edited_entry(
    filled: FilledVault, target_db: PostgresEngine
) -> None:
    data_dir = filled.path
    copy_partly(data_dir, target_db, None)
    tail = source_tail(data_dir)
    sealed = "SELECT ciphertext FROM credentials WHERE name = 'sales-1'"
    ciphertext = bytes(target_db.tuples(sealed, [])[0][0])
    flipped = bytes([ciphertext[0] ^ 1]) + ciphertext[1:]
    target_db.execute("UPDATE credentials SET ciphertext = ? WHERE name = 'sales-1'", [flipped])
    with opened_through(data_dir, target_db) as gateway:
        with pytest.raises(IntegrityError, match=r"1 credentials .* do not open \(sales-1\)"):
            verify_copy(gateway, tail)

        target_db.execute(
            "UPDATE credentials SET ciphertext = ? WHERE name = 'sales-1'", [ciphertext]
        )
        # The owner of the database can set the append-only rule aside; the chain still tells.
        target_db.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update", [])
        target_db.execute("UPDATE audit_events SET actor = 'os:mallory' WHERE seq = 2", [])
        with pytest.raises(IntegrityError, match="does not verify"):
            verify_copy(gateway, tail)


def test_a_url_with_a_password_is_refused_and_nothing_is_made(
    data_dir: Path, empty_store: StoreTarget, target_db: PostgresEngine
) -> None:
    secret_url = empty_store.url.replace("@", f":{empty_store.password}@", 1)
    run = migrate(data_dir, empty_store, secret_url)
    assert run.code == 2 and "--to carries a password" in run.err
    tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
    assert target_db.tuples(tables, []) == [(0,)]


def test_a_database_holding_anything_else_is_refused_before_a_row_is_written(
    data_dir: Path,
    vault_templates: dict[KeyType, Path],
    empty_store: StoreTarget,
    target_db: PostgresEngine,
    tmp_path: Path,
) -> None:
    target_db.execute("CREATE TABLE inventory (id INTEGER PRIMARY KEY)", [])
    run = migrate(data_dir, empty_store)
    assert run.code == 1 and "is not empty" in run.err
    assert not (data_dir / STORE_PASSWORD_FILE).exists()
    target_db.execute("DROP TABLE inventory", [])

    # Another gateway's vault (the RSA template is another gateway) moves in first.
    other = tmp_path / "other"
    shutil.copytree(vault_templates["rsa-3072"], other)
    location = empty_store.location
    migrate_to_shared_store(other, location, None, context=make_context(), pin=no_pin)
    before = trail(target_db)
    run = migrate(data_dir, empty_store)
    assert run.code == 1 and "already holds another vault (gateway" in run.err
    assert trail(target_db) == before  # the other vault's, untouched


def test_a_data_dir_already_on_a_shared_store_is_refused(
    data_dir: Path, empty_store: StoreTarget, tmp_path: Path
) -> None:
    write_membership(data_dir, ClusterMembership(empty_store.location, "m-1", 1))
    run = migrate(data_dir, empty_store)
    assert run.code == 1 and "already uses the shared store" in run.err
