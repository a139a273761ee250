"""The PostgreSQL engine's own contract, against a real server with passwords and TLS."""

from __future__ import annotations

import subprocess

import pytest

from agent_keys.errors import ConflictError, StorageError
from tests.postgres_processes import newest_postgres_bin_dir
from tests.postgres_servers import PostgresServer, StoreLogin
from vault.store.locator import PostgresLocation
from vault.store.postgres_engine import PostgresEngine, _placeholders
from vault.store.vault_store import VaultStore


def test_placeholders_outside_quotes_become_psycopgs_and_percent_signs_stay_literal() -> None:
    assert _placeholders("SELECT ? WHERE a = '?%' AND b LIKE ?") == (
        "SELECT %s WHERE a = '?%%' AND b LIKE %s"
    )
    assert _placeholders('SELECT "?" FROM t WHERE x % 2 = ?') == (
        'SELECT "?" FROM t WHERE x %% 2 = %s'
    )


@pytest.fixture
def engine(fresh_store_login: StoreLogin) -> PostgresEngine:
    VaultStore.create_shared(PostgresLocation(fresh_store_login.conninfo)).close()
    return PostgresEngine(fresh_store_login.conninfo, "test store")


def test_a_member_that_stalls_in_a_transaction_cannot_hold_the_cluster(
    engine: PostgresEngine,
) -> None:
    # Each session waits for a lock at most 10 s and is ended by the server
    # when it sits idle in a transaction (holding the write lock) for 30 s.
    settings = dict(engine.tuples(
        "SELECT name, setting FROM pg_settings WHERE name IN"
        " ('lock_timeout', 'idle_in_transaction_session_timeout')", [],
    ))  # fmt: skip
    assert settings == {"lock_timeout": "10000", "idle_in_transaction_session_timeout": "30000"}


def test_errors_are_translated_and_never_carry_the_conninfo(
    engine: PostgresEngine, fresh_store_login: StoreLogin
) -> None:
    with pytest.raises(ConflictError), engine.write():
        engine.execute("INSERT INTO settings (key, value) VALUES ('schema_version', 'x')", [])
    with pytest.raises(StorageError) as raised:
        engine.rows("SELECT no_such_column FROM settings", [])
    message = str(raised.value)
    assert "no_such_column" in message
    for private in (str(fresh_store_login.passfile), fresh_store_login.login.password):
        assert private not in message


def test_a_connection_lost_between_transactions_is_made_again(
    engine: PostgresEngine, shared_postgres: PostgresServer, fresh_store_login: StoreLogin
) -> None:
    with shared_postgres.admin() as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND application_name = 'gwvault'",
            [fresh_store_login.login.database],
        )
    with pytest.raises(StorageError):  # the lost connection, found by this statement
        engine.rows("SELECT 1", [])
    # The next connection may reach another server (a promoted standby): a kept
    # vault is opened again before its next use, its facts dropped (vault.kept_gateways).
    assert not engine.is_opened_file()
    with engine.write():  # the next transaction connects again
        engine.execute("INSERT INTO settings (key, value) VALUES ('after', 'reconnect')", [])
    assert engine.rows("SELECT value FROM settings WHERE key = 'after'", []) == [
        {"value": "reconnect"}
    ]
    assert not engine.is_opened_file()


def _backend(engine: PostgresEngine) -> int:
    return int(engine.tuples("SELECT pg_backend_pid()", [])[0][0])


def test_a_connection_lost_mid_transaction_fails_that_transaction_only(
    engine: PostgresEngine, shared_postgres: PostgresServer
) -> None:
    with pytest.raises(StorageError), engine.write():
        engine.execute("INSERT INTO settings (key, value) VALUES ('half', '1')", [])
        with shared_postgres.admin() as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", [_backend(engine)])
        engine.execute("INSERT INTO settings (key, value) VALUES ('half', '2')", [])
    assert engine.rows("SELECT value FROM settings WHERE key = 'half'", []) == []
    assert engine.write_refusal() is None


def test_a_session_that_turned_read_only_is_replaced_before_its_next_statement(
    engine: PostgresEngine,
) -> None:
    first = _backend(engine)
    # The server reports the change with its answer, as it does when an
    # administrator fences the whole server (ALTER SYSTEM and a reload).
    engine.execute("SET default_transaction_read_only = on", [])
    assert _backend(engine) != first  # a read too: a fenced server's data may be stale
    with engine.write():
        engine.execute("INSERT INTO settings (key, value) VALUES ('written', 'after')", [])
    assert engine.rows("SELECT value FROM settings WHERE key = 'written'", []) == [
        {"value": "after"}
    ]


def test_the_audit_tables_refuse_update_delete_and_truncate_in_the_database(
    engine: PostgresEngine,
) -> None:
    with engine.write():
        engine.execute(
            "INSERT INTO audit_events (seq, at, actor, channel, action, target, outcome,"
            " request_id, details, prev_hash, hash, mac) VALUES (1, 't', 'a', 'cli', 'x', NULL,"
            " 'ok', 'r', '{}', ?, ?, NULL)",
            [b"p", b"h"],
        )
    for statement in (
        "UPDATE audit_events SET actor = 'someone else'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        "TRUNCATE audit_checkpoints",
        "TRUNCATE audit_rotations",
    ):
        # Refused as SQLite's triggers refuse it: a constraint on the change.
        with pytest.raises(ConflictError) as refused, engine.write():
            engine.execute(statement, [])
        assert "append-only" in str(refused.value.__cause__)
    assert engine.rows("SELECT actor FROM audit_events", []) == [{"actor": "a"}]


def test_the_database_administrator_finds_no_secret_in_a_dump(
    engine: PostgresEngine, shared_postgres: PostgresServer, fresh_store_login: StoreLogin,
    tmp_path: object,
) -> None:  # fmt: skip
    from pathlib import Path

    from agent_keys.secret import Secret
    from tests.conftest import RECOVERY_KEY, make_context
    from vault.credentials import CredentialService
    from vault.format.data_source import DataSource
    from vault.format.encrypted_credential import CredentialPayload
    from vault.gateway import Gateway

    canary = "CANARY-" + "7f3a9c" * 4
    location = PostgresLocation(fresh_store_login.conninfo)
    engine.close()
    with shared_postgres.admin() as admin:  # a fresh database for a whole vault
        admin.execute(f'DROP DATABASE "{fresh_store_login.login.database}" WITH (FORCE)')
        admin.execute(
            f'CREATE DATABASE "{fresh_store_login.login.database}"'
            f' OWNER "{fresh_store_login.login.user}"'
        )
    data_dir = Path(str(tmp_path)) / "member"
    with Gateway.initialize(
        data_dir, "gw", "ec-p256", Secret.from_text(RECOVERY_KEY), make_context(),
        shared_store=location,
    ) as gateway:  # fmt: skip
        CredentialService(gateway).put(
            "sales",
            DataSource("postgresql", "db:5432", "sales"),
            CredentialPayload("basic", "reader", Secret.from_text(canary)),
        )
    dump = subprocess.run(
        [str(newest_postgres_bin_dir() / "pg_dump"), "--data-only", "--dbname",
         fresh_store_login.conninfo],
        capture_output=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    assert b"sales" in dump  # metadata is in clear, by design (A9)
    assert canary.encode() not in dump
