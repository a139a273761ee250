"""A vault kept open per thread across requests (vault.kept_gateways), and the
checked facts it keeps while the vault is unchanged (vault.gateway_facts).

Changes come through a second connection or the ``gwvault`` command, as from
another process; the long-lived vault must see each on its next use.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest

from agent_keys.errors import AccessDeniedError, StorageError
from tests.cluster_vaults import make_cluster
from tests.conftest import RECOVERY_KEY, make_context
from tests.postgres_servers import PostgresServer, StoreLogin
from tests.vault.cli.gwvault_process import GwvaultCli, private_file
from vault.context import RequestContext
from vault.gateway import Gateway
from vault.gateway_facts import GatewayFacts
from vault.kept_gateways import KeptGateways
from vault.keys.certificates import CertificateService


def _kept(data_dir: Path) -> KeptGateways:
    def open_gateway(context: RequestContext, facts: GatewayFacts) -> Gateway:
        return Gateway.open(data_dir, context, facts=facts)

    return KeptGateways(open_gateway, make_context("test:server"))


def _use(kept: KeptGateways) -> Gateway:
    gateway = kept.gateway(make_context("test:caller"))
    kept.release()
    return gateway


def test_a_thread_keeps_its_connection_and_another_thread_has_its_own(data_dir: Path) -> None:
    kept = _kept(data_dir)
    first, second = _use(kept), _use(kept)
    assert first.store is second.store  # the same connection, request after request
    assert first.context.actor == "test:caller"  # each use acts as its caller
    assert (data_dir / "vault.db-wal").exists()  # not closed (and checkpointed) per use
    other: list[Gateway] = []
    thread = threading.Thread(target=lambda: other.append(_use(kept)))
    thread.start()
    thread.join()
    assert other[0].store is not first.store
    kept.close()


def test_a_use_that_raised_mid_write_leaves_nothing_behind(data_dir: Path) -> None:
    kept = _kept(data_dir)
    gateway = kept.gateway(make_context())
    # A write its caller never finished (an exception between BEGIN and COMMIT).
    gateway.store.execute("BEGIN IMMEDIATE", [])
    gateway.store.set_setting("name", "half-written")
    kept.release()
    assert not gateway.store.in_write
    with sqlite3.connect(data_dir / "vault.db", timeout=1) as other:
        # Not held locked: another process writes, and sees no half-written change.
        other.execute("INSERT INTO settings (key, value) VALUES ('probe', '1')")
        assert other.execute("SELECT value FROM settings WHERE key = 'name'").fetchone() == (
            "gw-test",
        )
    assert _use(kept).name == "gw-test"
    kept.close()


def test_a_forked_child_opens_its_own_connection(data_dir: Path) -> None:
    kept = _kept(data_dir)
    inherited = _use(kept).store
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports by its exit code
        code = 1
        try:
            gateway = _use(kept)
            gateway.audit.record("test.child", None)
            code = 0 if gateway.store is not inherited else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's connection was neither used nor closed by the child.
    parent = _use(kept)
    assert parent.store is inherited
    assert [e.action for e in parent.store.audit_events()][-1] == "test.child"
    kept.close()


def test_a_replaced_or_opened_up_database_file_is_opened_again_with_its_checks(
    data_dir: Path, tmp_path: Path
) -> None:
    kept = _kept(data_dir)
    first = _use(kept)
    copy = tmp_path / "copy.db"
    with sqlite3.connect(data_dir / "vault.db") as db:
        db.execute("VACUUM INTO ?", [str(copy)])
    copy.chmod(0o600)
    os.replace(copy, data_dir / "vault.db")  # a restore put another file in its place
    assert _use(kept).store is not first.store
    (data_dir / "vault.db").chmod(0o644)
    with pytest.raises(AccessDeniedError):
        _use(kept)
    kept.close()


def test_a_certificate_rotated_through_another_connection_is_served_next(
    data_dir: Path,
) -> None:
    kept = _kept(data_dir)
    before = _use(kept).certificate()
    assert _use(kept).certificate() is before  # kept: not parsed and checked again
    with Gateway.open(data_dir, make_context()) as admin:
        rotated = CertificateService(admin).rotate()
    served = _use(kept)
    assert served.certificate().thumbprint == rotated.thumbprint != before.thumbprint
    assert set(served.private_keys) == {before.thumbprint, rotated.thumbprint}
    kept.close()


def test_a_rotation_by_the_gwvault_command_is_seen_by_the_next_use(
    data_dir: Path, tmp_path: Path
) -> None:
    kept = _kept(data_dir)
    gmk, cert = _use(kept).master_key, _use(kept).certificate()
    cli = GwvaultCli(data_dir)
    key_file = private_file(tmp_path / "recovery", RECOVERY_KEY)
    assert cli("keys", "rotate", "--recovery-key-file", key_file).code == 0
    assert _use(kept).master_key.version == gmk.version + 1
    assert cli("cert", "rotate").code == 0
    assert _use(kept).certificate().thumbprint != cert.thumbprint
    # The kept vault writes under the new GMK and MACs with the audit key it now wraps.
    _use(kept).audit.record("test.after-rotation", None)
    kept.close()
    assert cli("audit", "verify").code == 0


def test_a_change_rolled_back_is_never_served_later(data_dir: Path) -> None:
    kept = _kept(data_dir)
    before = _use(kept).certificate()
    gateway = kept.gateway(make_context())
    with pytest.raises(RuntimeError), gateway.store.write():
        CertificateService(gateway).rotate()
        assert gateway.certificate().thumbprint != before.thumbprint  # its own view
        inside = gateway.store.facts_generation()
        raise RuntimeError("the request failed after the rotation")
    kept.release()
    # Other changes move the generation to the number the rolled-back write had
    # seen: a value cached inside that write would now look current.
    with Gateway.open(data_dir, make_context()) as admin, admin.store.write():
        while admin.store.facts_generation() < inside:
            probe = f"test_probe_{admin.store.facts_generation()}"
            admin.store.execute("INSERT INTO settings (key, value) VALUES (?, '1')", [probe])
    assert _use(kept).store.facts_generation() == inside
    assert _use(kept).certificate().thumbprint == before.thumbprint
    kept.close()


def test_the_generation_moves_with_keys_certificates_and_settings_not_audit_entries(
    data_dir: Path,
) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        start = gateway.store.facts_generation()
        gateway.audit.record("test.entry", None)  # rewrites the audit head setting
        assert gateway.store.facts_generation() == start
        CertificateService(gateway).rotate()
        assert gateway.store.facts_generation() > start


def test_the_vault_of_a_thread_that_ended_is_closed_when_another_opens_one(
    data_dir: Path,
) -> None:
    kept = _kept(data_dir)
    used: list[Gateway] = []
    for _ in range(2):  # a pool that replaces its threads
        thread = threading.Thread(target=lambda: used.append(_use(kept)))
        thread.start()
        thread.join()
    with pytest.raises(StorageError, match="closed database"):
        used[0].store.rows("SELECT 1", [])
    assert used[1].store.rows("SELECT 1 AS one", []) == [{"one": 1}]
    kept.close()


def test_a_cluster_members_vault_whose_connection_broke_is_opened_again_with_fresh_facts(
    tmp_path: Path, fresh_store_login: StoreLogin, shared_postgres: PostgresServer
) -> None:
    """The next connection may reach another server (a failover to a standby
    that lacks the last commits): the kept vault and the facts it checked are
    not carried over to it."""
    data_dir = make_cluster(tmp_path, fresh_store_login.conninfo, ["a"]).data_dir("a")
    kept = _kept(data_dir)
    first = _use(kept)
    (pid,) = first.store.tuples("SELECT pg_backend_pid()", [])[0]
    with shared_postgres.admin() as db:
        db.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
    with pytest.raises(StorageError):  # the use that finds it broken fails...
        first.store.tuples("SELECT 1", [])
    second = _use(kept)  # ...and the next opens the vault again (its facts dropped with it)
    assert second.store is not first.store
    assert second.certificate() == first.certificate()
    kept.close()
