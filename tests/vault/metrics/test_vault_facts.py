"""What a scrape reads of the vault: states, a cluster's members and leases, an
audit sink's lag, on both engines (a PostgreSQL vault is a cluster member), and a
planted member row."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from tests.audit_collector import AuditCollector
from tests.conftest import make_context
from tests.store_engines import EngineVaults
from tests.web.metrics_vault import samples, value
from vault.access.destination_policy import allow_sqlite_dir
from vault.audit.sinks.registry import AuditSinkService
from vault.audit.sinks.standing import sink_lags
from vault.cluster.lease import acquire
from vault.credential_life import life_change_of
from vault.credentials import CredentialService
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway
from vault.health.checks import LEASE
from vault.metrics.vault_facts import read_vault_facts
from vault.notify.sink_config import webhook_config
from web.metrics.exposition import VaultCollector


def _scraped(gateway: Gateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    facts = read_vault_facts(gateway, per_credential=False)
    return samples(generate_latest(VaultCollector(facts)).decode())


@pytest.mark.contract
def test_states_members_and_lease_holders(data_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
    with Gateway.open(data_dir, make_context()) as gateway:
        allow_sqlite_dir(gateway, str(tmp_path))
        service = CredentialService(gateway)
        for name in ("past", "gone", "fine"):
            service.put(
                name, DataSource("sqlite", str(db)), CredentialPayload("anonymous", None, None)
            )
        service.change_life("past", life_change_of(expires_at="2001-01-01T00:00:00Z"))
        service.delete("gone")
        parsed = _scraped(gateway)
        assert value(parsed, "gwvault_credentials", state="expired") == 1
        assert value(parsed, "gwvault_credentials", state="deleted") == 1
        assert value(parsed, "gwvault_credentials", state="active") == 1
        # An expired credential is still tested (its server may still accept it).
        assert value(parsed, "gwvault_credential_status", reason="untested") == 2
        if gateway.member_id is None:  # a single machine
            assert not [key for key in parsed if key[0].startswith("gwvault_cluster")]
            return
        assert value(parsed, "gwvault_cluster_members", state="enabled") == 1
        assert value(parsed, "gwvault_lease_holder", lease=LEASE,
                      member=gateway.member_id) is None  # fmt: skip
        acquire(gateway.store, LEASE, gateway.member_id)
        parsed = _scraped(gateway)
        assert value(parsed, "gwvault_lease_holder", lease=LEASE,
                     member=gateway.member_id) == 1  # fmt: skip


def test_a_planted_member_row_counts_as_unverified(
    member_dir: Path, postgresql_vaults: EngineVaults
) -> None:
    data_dir, vaults = member_dir, postgresql_vaults
    columns = ("software_version, keystore_kind, public_key, wrapped_private_key, state, epoch,"
               " joined_at, last_seen_ms, mac")  # fmt: skip
    with vaults.sql(data_dir, attacker=True) as sql:
        # A second member planted with the first one's seal, as a disabled one.
        sql.execute(
            f"INSERT INTO members (id, name, {columns}) SELECT 'planted', 'planted', {columns}"  # noqa: S608 - fixed names
            " FROM members"
        )
        sql.execute("UPDATE members SET state = 'disabled' WHERE id = 'planted'")
    with Gateway.open(data_dir, make_context()) as gateway:
        parsed = _scraped(gateway)
    assert value(parsed, "gwvault_cluster_members", state="unverified") == 1
    assert value(parsed, "gwvault_cluster_members", state="enabled") == 1
    assert value(parsed, "gwvault_cluster_members", state="disabled") == 0


@pytest.mark.contract
def test_an_audit_sink_behind_the_trail_is_reported_by_name_and_policy(
    data_dir: Path, audit_collector: AuditCollector
) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        assert not [key for key in _scraped(gateway) if key[0] == "gwvault_audit_sink_lag_entries"]
        config = webhook_config(audit_collector.url, audit_collector.ca.pem)
        AuditSinkService(gateway).add("siem", config, "buffer")
        (lag,) = sink_lags(gateway)
        assert lag.behind > 0  # nothing sent yet: the housekeeper sends every 5 s
        parsed = _scraped(gateway)
    assert value(parsed, "gwvault_audit_sink_lag_entries", sink="siem", policy="buffer") == (
        lag.behind
    )
