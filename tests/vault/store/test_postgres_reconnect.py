"""The PostgreSQL engine's connection outlives what breaks it: a long-lived process never
keeps a dead connection, or one to a server that takes no writes.

A server's own failover is in tests/web/test_cluster_failover.py; here one
session is ended or made read-only under a kept connection.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent_keys.errors import StorageError
from tests.postgres_servers import PostgresServer, StoreLogin
from vault.store.locator import parse_store_url
from vault.store.vault_store import VaultStore


@pytest.fixture
def store(fresh_store_login: StoreLogin) -> Iterator[VaultStore]:
    opened = VaultStore.create_shared(parse_store_url(fresh_store_login.conninfo))
    yield opened
    opened.close()


def _backend(store: VaultStore) -> int:
    return int(store.tuples("SELECT pg_backend_pid()", [])[0][0])


def _terminate(server: PostgresServer, pid: int) -> None:
    with server.admin() as db:
        db.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])


def test_a_connection_ended_between_transactions_is_replaced_at_the_next(
    store: VaultStore, shared_postgres: PostgresServer
) -> None:
    first = _backend(store)
    _terminate(shared_postgres, first)
    with pytest.raises(StorageError):  # the statement that finds it dead fails...
        _backend(store)
    # The next connection may reach another server: a kept vault is opened
    # again before its next use, its facts dropped (vault.kept_gateways).
    assert not store.is_opened_file()
    with store.write():  # ...and the next statement reconnects
        store.set_setting("reconnected", "yes")
    assert _backend(store) != first and store.setting("reconnected") == "yes"
    assert not store.is_opened_file()


def test_a_connection_ended_mid_transaction_fails_that_transaction_only(
    store: VaultStore, shared_postgres: PostgresServer
) -> None:
    with pytest.raises(StorageError), store.write():
        store.set_setting("half-done", "1")
        _terminate(shared_postgres, _backend(store))
        store.set_setting("half-done", "2")
    assert store.setting("half-done") is None
    assert store.engine.write_refusal() is None


def test_a_session_that_turned_read_only_is_replaced_before_its_next_statement(
    store: VaultStore,
) -> None:
    first = _backend(store)
    # The server reports the change with its answer, as it does when an
    # administrator fences the whole server (ALTER SYSTEM and a reload).
    store.execute("SET default_transaction_read_only = on", [])
    assert _backend(store) != first  # a read, too: a fenced server's data may be stale
    with store.write():
        store.set_setting("written", "after")
    assert store.setting("written") == "after"
