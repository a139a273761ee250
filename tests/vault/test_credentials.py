"""The credential lifecycle through the service layer, with its audit entries."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent_keys.errors import (
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    StorageError,
    VaultError,
)
from agent_keys.secret import Secret
from tests.conftest import make_context
from tests.sealing import seal
from tests.store_engines import EngineVaults
from tests.tls_certificates import make_ca
from vault.access.destination_policy import allow_sqlite_dir
from vault.credentials import CredentialService
from vault.format.ca_certificates import canonical_ca_pem
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway

pytestmark = pytest.mark.contract

PG = DataSource("postgresql", "127.0.0.1:5432", "sales")


def alice(secret: str = "pw-1") -> CredentialPayload:
    return CredentialPayload("basic", "alice", Secret.from_text(secret))


def actions(gateway: Gateway) -> list[tuple[str, str | None, str]]:
    return [(e.action, e.target, e.outcome) for e in gateway.store.audit_events()]


def test_put_then_update_bumps_the_version_and_records_both(gateway: Gateway) -> None:
    service = CredentialService(gateway)
    first = service.put("sales", PG, alice())
    second = service.put("sales", PG, alice("pw-2"))
    assert (first.created, second.created) == (True, False)
    assert second.record.binding.version == 2
    assert second.record.binding.credential_id == first.record.binding.credential_id
    assert service.use("sales", "job-1").secret == Secret.from_text("pw-2")
    assert actions(gateway)[-3:] == [
        ("credential.created", "sales", "ok"),
        ("credential.updated", "sales", "ok"),
        ("credential.used", "sales", "ok"),
    ]


def test_list_and_show_carry_metadata_only(gateway: Gateway) -> None:
    service = CredentialService(gateway)
    service.put("sales", PG, alice("CANARY-in-list"))
    [row] = [record.metadata() for record in service.list()]
    assert row["name"] == "sales" and row["username"] == "alice" and row["key_version"] == 1
    assert "CANARY" not in repr(row) and "CANARY" not in repr(service.get("sales"))


def test_a_sealed_credential_for_this_data_source_is_stored(gateway: Gateway) -> None:
    token = seal(gateway.certificate(), "sales", PG, alice("sealed-pw"))
    CredentialService(gateway).put_sealed("sales", PG, token)
    assert CredentialService(gateway).use("sales", "job").secret == Secret.from_text("sealed-pw")


def test_a_sealed_credential_for_another_data_source_is_refused_and_recorded(
    gateway: Gateway,
) -> None:
    token = seal(gateway.certificate(), "hr", PG, alice())
    with pytest.raises(InvalidInputError, match="does not open"):
        CredentialService(gateway).put_sealed("sales", PG, token)
    assert gateway.store.count_credentials() == 0
    assert actions(gateway)[-1] == ("credential.rejected", "sales", "refused")


@pytest.mark.parametrize("name", ["", "../etc", "a b", "x" * 129, "-lead", "naïve", "a\nb"])
def test_bad_names_are_refused(gateway: Gateway, name: str) -> None:
    with pytest.raises(InvalidInputError):
        CredentialService(gateway).put(name, PG, alice())
    assert gateway.store.count_credentials() == 0


def test_when_the_audit_write_fails_the_change_does_not_happen(
    gateway: Gateway, data_dir: Path, vaults: EngineVaults
) -> None:
    service = CredentialService(gateway)
    service.put("sales", PG, alice("old"))
    with vaults.sql(data_dir) as db:
        db.refuse_inserts("audit_events", "disk full (simulated)")
    with pytest.raises(VaultError):
        service.put("sales", PG, alice("new"))
    with pytest.raises(VaultError):
        service.delete("sales")
    with pytest.raises(StorageError):
        service.use("sales", "job")  # fail closed: no secret without its record
    record = service.get("sales")
    assert record.binding.version == 1
    with vaults.sql(data_dir) as db:
        db.allow_inserts("audit_events")
    assert service.use("sales", "job").secret == Secret.from_text("old")


def test_a_stored_row_pointed_at_another_server_no_longer_opens(
    gateway: Gateway, data_dir: Path, vaults: EngineVaults
) -> None:
    service = CredentialService(gateway)
    service.put("sales", PG, alice())
    with vaults.sql(data_dir) as db:
        db.execute("UPDATE credentials SET server = 'attacker.example:5432'")
    report = service.verify()
    assert (report.opened, report.failed) == ([], ["sales"])
    with pytest.raises(VaultError):
        service.test("sales")  # the password is never sent to the attacker's host
    assert actions(gateway)[-1][0] == "credentials.verified"


def test_purge_removes_the_credential_and_its_data_key(
    gateway: Gateway, data_dir: Path, vaults: EngineVaults
) -> None:
    service = CredentialService(gateway)
    wrapped = service.put("sales", PG, alice()).record.sealed.wrapped_dek
    service.delete("sales")
    service.purge("sales")
    with pytest.raises(NotFoundError):
        service.get("sales")
    with pytest.raises(NotFoundError):
        service.purge("sales")
    gateway.close()
    with vaults.sql(data_dir) as db:
        assert not db.holds(wrapped)
    with Gateway.open(data_dir, make_context()) as reopened:
        assert actions(reopened)[-2:] == [
            ("credential.deleted", "sales", "ok"),
            ("credential.purged", "sales", "ok"),
        ]


@pytest.mark.parametrize(
    ("column", "value"),
    [("tls", "'disable'"), ("tls", "'require'"), ("ca_pem", "NULL"), ("binding_version", "1")],
)
def test_a_database_writer_cannot_weaken_a_stored_tls_policy(
    gateway: Gateway, data_dir: Path, vaults: EngineVaults, column: str, value: str
) -> None:
    # T-AR-4: the policy decides who may be given the secret, so it is bound:
    # an edited mode or CA, or a row passed off as from before policies, no longer opens.
    ca = canonical_ca_pem(make_ca("sales CA").pem)
    service = CredentialService(gateway)
    service.put("sales", DataSource("postgresql", "db:5432", tls="verify-full", ca_pem=ca), alice())
    with vaults.sql(data_dir) as db:
        db.execute(f"UPDATE credentials SET {column} = {value}")  # noqa: S608 - fixed test values
    with pytest.raises(IntegrityError):
        service.use("sales", "job")
    with pytest.raises(IntegrityError):
        service.test("sales")  # nothing is sent under the weakened policy


def test_an_update_that_weakens_the_tls_policy_is_recorded(gateway: Gateway) -> None:
    service = CredentialService(gateway)
    service.put("sales", PG, alice())
    service.put("sales", DataSource("postgresql", PG.server, PG.database, tls="require"), alice())
    [updated] = [e for e in gateway.store.audit_events() if e.action == "credential.updated"]
    assert '"tls":"require"' in updated.details
    assert '"tls_weakened_from":"verify-full"' in updated.details


def test_a_new_credential_cannot_choose_the_legacy_mode(gateway: Gateway) -> None:
    with pytest.raises(InvalidInputError, match="TLS mode"):
        CredentialService(gateway).put("sales", DataSource("mysql", "db", tls="prefer"), alice())
    assert gateway.store.count_credentials() == 0


def test_a_test_by_a_caller_who_is_not_an_admin_keeps_off_loopback(gateway: Gateway) -> None:
    service = CredentialService(gateway)
    service.put("sales", DataSource("postgresql", "127.0.0.1:1", tls="disable"), alice())
    result = service.test("sales")
    assert result.reason == "refused_by_policy"
    assert actions(gateway)[-1] == ("credential.tested", "sales", "refused")
    assert '"reason":"refused_by_policy"' in gateway.store.audit_events()[-1].details
    assert service.test("sales", any_destination=True).reason == "unreachable"


def test_test_connection_of_a_real_sqlite_file_is_recorded(
    gateway: Gateway, tmp_path: Path
) -> None:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
    service = CredentialService(gateway)
    service.put("app", DataSource("sqlite", str(db)), CredentialPayload("anonymous", None, None))
    assert service.test("app").reason == "refused_by_policy"  # no directory allowed yet
    allow_sqlite_dir(gateway, str(tmp_path))
    assert service.test("app").ok
    # The status changed from refused_by_policy, in the same write as the test.
    assert actions(gateway)[-2:] == [
        ("credential.tested", "app", "ok"),
        ("credential.status-changed", "app", "ok"),
    ]


def test_a_sqlite_test_never_probes_the_vaults_own_files(gateway: Gateway, data_dir: Path) -> None:
    # Even an admin who allowed the directory above the data dir learns nothing
    # about vault.db (before: "ok: ... with 34 schema objects").
    allow_sqlite_dir(gateway, str(data_dir.parent))
    service = CredentialService(gateway)
    for name in ("vault.db", "keystore.key", "absent.db"):
        source = DataSource("sqlite", str(data_dir / name))
        login = CredentialPayload("anonymous", None, None)
        if not (data_dir / name).is_file():
            # The local operator's put checks the file (a PostgreSQL vault has no vault.db).
            with pytest.raises(InvalidInputError, match="cannot be used"):
                service.put(name.replace(".", "-"), source, login)
            continue
        service.put(name.replace(".", "-"), source, login)
        result = service.test(name.replace(".", "-"), any_destination=True)
        assert result.reason == "refused_by_policy", result.detail
        assert "data directory" in result.detail
