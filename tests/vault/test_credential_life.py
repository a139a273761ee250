"""A credential's life beside its secret: disable, enable, soft delete, restore, purge.

The issue's promise: a soft-deleted credential opens for nobody, restores
intact, and purges to nothing in the database file; a database writer can
neither bring a deleted or disabled credential back nor plant a life.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from agent_keys.errors import AccessDeniedError, ConflictError, InvalidInputError, NotFoundError
from agent_keys.secret import Secret
from tests.conftest import make_context
from tests.store_engines import EngineVaults
from tests.vault.access.test_entry_links import session_caller
from tests.vault.access.test_row_seal import _put_back, _row_copy
from vault.access.row_seal import TamperedRowError
from vault.context import RequestContext
from vault.credential_life import CredentialUnavailableError, LifeChange, parse_retention_days
from vault.credentials import CredentialService
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway

PG = DataSource("postgresql", "127.0.0.1:5432", "sales")
SECRET = "life-CANARY-5d1e"


def alice() -> CredentialPayload:
    return CredentialPayload("basic", "alice", Secret.from_text(SECRET))


def actions(gateway: Gateway) -> list[tuple[str, str | None, str]]:
    return [(e.action, e.target, e.outcome) for e in gateway.store.audit_events()]


@pytest.mark.contract
def test_a_deleted_credential_opens_for_nobody_restores_intact_and_purges_to_nothing(
    gateway: Gateway, data_dir: Path, vaults: EngineVaults
) -> None:
    service = CredentialService(gateway)
    stored = service.put("sales", PG, alice()).record
    deleted = service.delete("sales")
    assert deleted.state == "deleted" and deleted.life.purge_after is not None

    # Opens for nobody: no use, no test, no put over its reserved name.
    with pytest.raises(CredentialUnavailableError, match="deleted"):
        service.use("sales", "job-1")
    with pytest.raises(CredentialUnavailableError, match="deleted"):
        service.test("sales")
    with pytest.raises(CredentialUnavailableError, match="restore"):
        service.put("sales", PG, alice())
    assert [r.name for r in service.list()] == []
    assert [r.name for r in service.list(deleted=True)] == ["sales"]
    assert actions(gateway)[-1] == ("credential.used", "sales", "refused")

    # Restores intact: the same version and sealed secret, usable again.
    restored = service.restore("sales")
    assert (restored.binding, restored.sealed) == (stored.binding, stored.sealed)
    assert service.use("sales", "job-2").secret == Secret.from_text(SECRET)

    # Purges to nothing: the row, its wrapped data key and ciphertext are gone
    # from the database file (and from SQLite's write-ahead log).
    service.delete("sales")
    service.purge("sales")
    with pytest.raises(NotFoundError):
        service.get("sales")
    gateway.close()
    with vaults.sql(data_dir) as db:
        assert not db.holds(stored.sealed.wrapped_dek)
        assert not db.holds(stored.sealed.ciphertext)
    wal = data_dir / "vault.db-wal"
    if wal.exists():
        assert stored.sealed.wrapped_dek not in wal.read_bytes()
    with Gateway.open(data_dir, make_context()) as reopened:
        trail = [a for a in actions(reopened) if a[0] != "credential.used"]
        assert trail[-5:] == [
            ("credential.created", "sales", "ok"),
            ("credential.deleted", "sales", "ok"),
            ("credential.restored", "sales", "ok"),
            ("credential.deleted", "sales", "ok"),
            ("credential.purged", "sales", "ok"),
        ]
        # The name is free again once purged.
        assert CredentialService(reopened).put("sales", PG, alice()).created


@pytest.mark.contract
def test_a_disabled_credential_is_kept_but_neither_used_nor_tested(gateway: Gateway) -> None:
    service = CredentialService(gateway)
    service.put("sales", PG, alice())
    service.disable("sales")
    with pytest.raises(CredentialUnavailableError, match="disabled"):
        service.use("sales", "job-1")
    with pytest.raises(CredentialUnavailableError, match="disabled"):
        service.test("sales")
    with pytest.raises(ConflictError, match="already"):
        service.disable("sales")
    # A new secret may be put while disabled; it stays disabled.
    assert service.put("sales", PG, alice()).record.state == "disabled"
    # Deleted and restored, it is still disabled.
    service.delete("sales")
    assert service.restore("sales").state == "disabled"
    service.enable("sales")
    assert service.use("sales", "job-2").secret == Secret.from_text(SECRET)
    with pytest.raises(ConflictError, match="not disabled"):
        service.enable("sales")
    with pytest.raises(ConflictError, match="not deleted"):
        service.restore("sales")
    with pytest.raises(ConflictError, match="delete it first"):
        service.purge("sales")


def test_deleted_credentials_purge_themselves_after_the_retention_window(data_dir: Path) -> None:
    start = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    now = [start]

    def at() -> Gateway:
        context = RequestContext(actor="test:alice", channel="cli", clock=lambda: now[0])
        return Gateway.open(data_dir, context)

    with at() as gateway:
        service = CredentialService(gateway)
        service.set_retention_days(7)
        service.put("sales", PG, alice())
        service.put("hr", PG, alice())
        service.delete("sales")
    now[0] = start + datetime.timedelta(days=3)
    with at() as gateway:
        service = CredentialService(gateway)
        service.delete("hr")
        assert service.purge_expired() == ()
    now[0] = start + datetime.timedelta(days=7, seconds=1)
    with at() as gateway:
        service = CredentialService(gateway)
        assert service.purge_expired() == ("sales",)
        assert [r.name for r in service.list(deleted=True)] == ["hr"]
        purged = [e for e in gateway.store.audit_events() if e.action == "credential.purged"]
        assert [(e.target, '"purged_by":"retention"' in e.details) for e in purged] == [
            ("sales", True)
        ]


@pytest.mark.parametrize("days", ["6", "91", "-7", "30.5", "", " 3 0", "٣٠", "1e2"])
def test_a_retention_outside_7_to_90_whole_days_is_refused(days: str) -> None:
    with pytest.raises(InvalidInputError, match="retention"):
        parse_retention_days(days)


def test_the_owners_dates_are_set_kept_and_cleared(gateway: Gateway) -> None:
    service = CredentialService(gateway)
    change = LifeChange(expires_at="2027-01-31T00:00:00+00:00", rotate_every=90 * 86400)
    record = service.put("sales", PG, alice(), life=change).record
    assert (record.life.expires_at, record.life.rotate_every) == (change.expires_at, 7776000)
    # A put without a change keeps them; a change of one keeps the others.
    assert service.put("sales", PG, alice()).record.life == record.life
    changed = service.change_life("sales", LifeChange(contact="dba@example.com", expires_at=None))
    assert (changed.life.expires_at, changed.life.rotate_every, changed.life.contact) == (
        None,
        7776000,
        "dba@example.com",
    )
    assert actions(gateway)[-1] == ("credential.life-changed", "sales", "ok")


@pytest.mark.parametrize(
    ("column", "value"),
    [("deleted_at", "NULL"), ("purge_after", "NULL"), ("disabled_at", "NULL"),
     ("expires_at", "'2099-01-01T00:00:00+00:00'"), ("contact", "'mallory@example.com'"),
     ("rotate_every", "1.5")],
)  # fmt: skip
def test_a_database_writer_cannot_change_a_credentials_life(
    gateway: Gateway, data_dir: Path, vaults: EngineVaults, column: str, value: str
) -> None:
    service = CredentialService(gateway)
    service.put("sales", PG, alice(), life=LifeChange(contact="dba@example.com"))
    service.disable("sales")
    service.delete("sales")
    gateway.close()
    with vaults.sql(data_dir) as db:
        db.execute(f"UPDATE credentials SET {column} = {value}")  # noqa: S608 - the test's own
    with Gateway.open(data_dir, make_context()) as reopened, pytest.raises(TamperedRowError):
        CredentialService(reopened).get("sales")


@pytest.mark.parametrize("change", ["disable", "delete"])
def test_an_older_copy_of_the_row_does_not_undo_a_disable_or_a_delete(
    data_dir: Path, change: str
) -> None:
    # Its seal is valid (it was sealed once); the trail's newest entry says it is stale.
    with Gateway.open(data_dir, make_context()) as gateway:
        CredentialService(gateway).put("sales", PG, alice())
    active = _row_copy(data_dir, "credentials")
    with Gateway.open(data_dir, make_context()) as gateway:
        getattr(CredentialService(gateway), change)("sales")
    _put_back(data_dir, "credentials", active)
    with Gateway.open(data_dir, make_context()) as gateway:
        with pytest.raises(TamperedRowError):
            CredentialService(gateway).use("sales", "job-1")
        assert "credential.used" not in [a[0] for a in actions(gateway)]


def test_who_may_change_a_credentials_life(gateway: Gateway) -> None:
    vault = gateway
    creator, as_creator = session_caller(vault, "cleo", "creator")
    other, as_other = session_caller(vault, "otto", "creator")
    admin, as_admin = session_caller(vault, "ada", "admin")
    CredentialService(as_creator, creator).put("sales", PG, alice())
    # Another creator may not touch it; its own creator may, but not purge.
    with pytest.raises(AccessDeniedError):
        CredentialService(as_other, other).disable("sales")
    CredentialService(as_creator, creator).delete("sales")
    with pytest.raises(AccessDeniedError):
        CredentialService(as_creator, creator).purge("sales")
    with pytest.raises(AccessDeniedError):
        CredentialService(as_creator, creator).set_retention_days(30)
    CredentialService(as_admin, admin).purge("sales")
    refused = [a for a in actions(vault) if a[0] == "access.refused"]
    assert len(refused) == 3


def test_a_deleted_credentials_dates_are_changed_only_after_a_restore(gateway: Gateway) -> None:
    service = CredentialService(gateway)
    service.put("sales", PG, alice())
    service.delete("sales")
    with pytest.raises(CredentialUnavailableError, match="restore"):
        service.change_life("sales", LifeChange(contact="dba@example.com"))
    service.restore("sales")
    assert service.change_life("sales", LifeChange(contact="dba@example.com")).life.contact
