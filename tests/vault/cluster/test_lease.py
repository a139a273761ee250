"""Leases for singleton work: on the database clock, fenced by a token, inside transactions."""

from __future__ import annotations

import pytest

from tests.postgres_servers import StoreLogin
from vault.cluster.lease import LeaseLostError, acquire, check_fence, fenced, leases, release
from vault.store.locator import PostgresLocation
from vault.store.vault_store import VaultStore


@pytest.fixture
def stores(fresh_store_login: StoreLogin) -> tuple[VaultStore, VaultStore]:
    """Two members' connections to one shared store (the schema only)."""
    location = PostgresLocation(fresh_store_login.conninfo)
    VaultStore.create_shared(location).close()
    return VaultStore.open_shared(location, "m1"), VaultStore.open_shared(location, "m2")


def test_one_holder_at_a_time_and_a_new_token_for_each_new_holder(
    stores: tuple[VaultStore, VaultStore],
) -> None:
    one, two = stores
    first = acquire(one, "job", "m1", ttl_ms=60_000)
    with pytest.raises(LeaseLostError, match="another member"):
        acquire(two, "job", "m2")
    assert acquire(one, "job", "m1").token == first.token  # a renewal keeps the token
    release(one, first)
    second = acquire(two, "job", "m2")
    assert second.token == first.token + 1
    assert [(lease["holder"], lease["token"]) for lease in leases(one)] == [("m2", 2)]


def test_a_holder_that_paused_past_its_lease_has_its_next_step_refused(
    stores: tuple[VaultStore, VaultStore],
) -> None:
    one, two = stores
    paused = acquire(one, "rotation", "m1", ttl_ms=1)  # expires at once: m1 "paused"
    taken = acquire(two, "rotation", "m2")
    assert taken.token == paused.token + 1
    with pytest.raises(LeaseLostError, match="taken over"), fenced(one, paused):
        one.set_setting("step", "m1")  # never committed
    assert one.setting("step") is None
    with fenced(two, taken):
        two.set_setting("step", "m2")
    assert one.setting("step") == "m2"


def test_a_fence_outside_a_transaction_is_a_bug_not_a_pass(
    stores: tuple[VaultStore, VaultStore],
) -> None:
    one, _ = stores
    lease = acquire(one, "job", "m1")
    with pytest.raises(Exception, match="inside its transaction"):
        check_fence(one, lease)
