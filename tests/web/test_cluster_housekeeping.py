"""A cluster's housekeepers: every member beats on the database clock, one checks the trail.

Each round here is one pass of the served housekeeper's loop
(``web.housekeeping.audit_housekeeper``) for one member's data dir, on a real
PostgreSQL database; the served processes are in test_cluster_serving.py.
"""

from __future__ import annotations

import datetime
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.cluster_vaults import Cluster, make_cluster
from tests.conftest import make_context
from tests.postgres_servers import StoreLogin
from vault.audit.background import FULL_CHECK_LEASE
from vault.audit.mark import MarkBook
from vault.cluster.lease import LeaseLostError, acquire, fenced, leases
from vault.cluster.members import ClusterMembers
from vault.context import RequestContext
from vault.credential_purge import PURGE_LEASE
from vault.credentials import CredentialService
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway
from web.access import VaultHandle
from web.housekeeping import FULL_CHECK_SECONDS, audit_housekeeper

ANONYMOUS = CredentialPayload("anonymous", None, None)


@pytest.fixture
def cluster(tmp_path: Path, fresh_store_login: StoreLogin) -> Cluster:
    return make_cluster(tmp_path, fresh_store_login.conninfo, ["a", "b"])


def _unlocked(cluster: Cluster, name: str) -> VaultHandle:
    """What ``gwvault serve`` holds for a member: its data dir and the GMK it unlocked."""
    data_dir = cluster.data_dir(name)
    with Gateway.open(data_dir, make_context()) as gateway:
        return VaultHandle(data_dir, gateway.master_key)


def _one_round(cluster: Cluster, name: str, handle: VaultHandle | None = None) -> None:
    stop = threading.Event()
    stop.set()  # one round, then the wait returns at once
    audit_housekeeper(handle or _unlocked(cluster, name))(stop)


def _members(cluster: Cluster) -> dict[str, dict[str, Any]]:
    with Gateway.open(cluster.data_dir("a"), make_context()) as gateway:
        return {m["name"]: m for m in ClusterMembers(gateway).list()}


def _lease(gateway: Gateway, name: str) -> dict[str, object]:
    (lease,) = [row for row in leases(gateway.store) if row["name"] == name]
    return lease


def _check_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    lines = [r.getMessage() for r in caplog.records if r.name == "gwvault.server"]
    return [line for line in lines if line.startswith("audit full check")]


def test_each_member_beats_and_one_holds_the_full_check(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gwvault.server")
    joined = {name: m["last_seen_ms"] for name, m in _members(cluster).items()}
    _one_round(cluster, "a")
    _one_round(cluster, "b")
    seen = _members(cluster)
    assert all(seen[n]["last_seen_ms"] > joined[n] for n in ("a", "b"))
    checked, skipped = _check_lines(caplog)
    assert checked.startswith("audit full check: OK")
    assert skipped.startswith("audit full check: not this member's turn; another member")
    with Gateway.open(cluster.data_dir("b"), make_context()) as gateway:
        lease = _lease(gateway, FULL_CHECK_LEASE)
        mark = MarkBook(gateway.store, gateway.audit, gateway.gateway_id).load()
    # The holder keeps it for the period and a minute, and renews it each period.
    assert (lease["name"], lease["holder"]) == (FULL_CHECK_LEASE, seen["a"]["id"])
    assert FULL_CHECK_SECONDS < float(str(lease["expires_in_s"])) <= FULL_CHECK_SECONDS + 60
    assert mark is not None and mark.checked_by == "background"


def test_another_member_takes_the_check_over_when_the_holder_stopped(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    _one_round(cluster, "a")
    with Gateway.open(cluster.data_dir("a"), make_context()) as gateway:
        # a stopped holder's lease runs out (here: at once, rather than in six hours)
        gateway.store.execute("UPDATE leases SET expires_ms = 0 WHERE name = ?", [FULL_CHECK_LEASE])
    caplog.set_level(logging.INFO, logger="gwvault.server")
    _one_round(cluster, "b")
    (checked,) = _check_lines(caplog)
    assert checked.startswith("audit full check: OK")
    with Gateway.open(cluster.data_dir("b"), make_context()) as gateway:
        lease = _lease(gateway, FULL_CHECK_LEASE)
        assert (lease["holder"], lease["token"]) == (gateway.member_id, 2)


def test_a_disabled_member_beats_but_never_takes_the_check(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    serving = _unlocked(cluster, "b")  # unlocked at start, then disabled while it serves
    with Gateway.open(cluster.data_dir("a"), make_context()) as gateway:
        ClusterMembers(gateway).set_state("b", "disabled")
    joined = _members(cluster)["b"]["last_seen_ms"]
    caplog.set_level(logging.INFO, logger="gwvault.server")
    _one_round(cluster, "b", serving)
    assert _members(cluster)["b"]["last_seen_ms"] > joined  # still running: the admin sees it
    failed = [r.getMessage() for r in caplog.records if "full audit check failed" in r.getMessage()]
    assert failed == ["the periodic full audit check failed: this member (b) is disabled; an admin"
                      " enables it with: gwvault cluster enable b"]  # fmt: skip
    with Gateway.open(cluster.data_dir("a"), make_context()) as gateway:
        assert leases(gateway.store) == []


def test_one_member_purges_expired_credentials_each_step_fenced_by_its_lease(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    month_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=31)
    back_then = RequestContext(actor="test:alice", channel="cli", clock=lambda: month_ago)

    def deleted(name: str, context: RequestContext) -> None:
        with Gateway.open(cluster.data_dir("a"), context) as gateway:
            service = CredentialService(gateway)
            service.put(name, DataSource("http", "https://hr.internal/api"), ANONYMOUS)
            service.delete(name)

    for name, context in (("old", back_then), ("older", back_then), ("fresh", make_context())):
        deleted(name, context)
    with Gateway.open(cluster.data_dir("a"), make_context()) as gateway:
        assert gateway.member_id is not None
        paused = acquire(gateway.store, PURGE_LEASE, gateway.member_id)
        # a's lease runs out (here: at once) while a is paused
        gateway.store.execute("UPDATE leases SET expires_ms = 0 WHERE name = ?", [PURGE_LEASE])
    caplog.set_level(logging.INFO, logger="gwvault.server")
    _one_round(cluster, "b")  # takes the lease over and purges
    _one_round(cluster, "a")  # not its turn
    lines = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("credential purge")
    ]
    assert lines[0] == "credential purge: purged old, older (retention window passed)"
    assert lines[1].startswith("credential purge: not this member's turn; another member")
    # The paused holder wakes with its old lease: its step is refused inside
    # the write, and nothing is purged.
    deleted("oldest", back_then)
    with Gateway.open(cluster.data_dir("a"), make_context()) as gateway:
        service = CredentialService(gateway)
        assert _lease(gateway, PURGE_LEASE)["token"] == 2
        with pytest.raises(LeaseLostError):
            service.purge_expired(step=lambda: fenced(gateway.store, paused))
        assert [r.name for r in service.list(deleted=True)] == ["fresh", "oldest"]
