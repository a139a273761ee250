"""Cluster members on a real PostgreSQL store: join, disable, remove, rotate, epochs.

Each member is a data dir of its own (keystore, binding, cluster.json) opening
the one shared database, as separate machines would.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent_keys.errors import ConflictError, InvalidInputError, KeyBackendError
from agent_keys.secret import Secret
from tests.conftest import RECOVERY_KEY, make_context
from tests.postgres_servers import PostgresServer, StoreLogin
from tests.softhsm_fixtures import MAIN_TOKEN, SoftHsm
from vault.access.row_seal import TamperedRowError
from vault.audit.log import AuditLog
from vault.cluster.member_keys import MemberStoppedError
from vault.cluster.members import ClusterMembers, join_cluster
from vault.credentials import CredentialService
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway
from vault.keys.keystore_binding import KeystoreSpec
from vault.keys.keystore_migration import migrate_keystore
from vault.keys.rotation import KeyRotation
from vault.store.locator import PostgresLocation

PG = DataSource("postgresql", "127.0.0.1:5432", "sales")


def alice(secret: str = "pw-1") -> CredentialPayload:
    return CredentialPayload("basic", "alice", Secret.from_text(secret))


@pytest.fixture
def store(fresh_store_login: StoreLogin) -> PostgresLocation:
    return PostgresLocation(fresh_store_login.conninfo)


@pytest.fixture
def first(tmp_path: Path, store: PostgresLocation) -> Path:
    path = tmp_path / "alpha"
    Gateway.initialize(
        path, "gw-cluster", "ec-p256", Secret.from_text(RECOVERY_KEY), make_context(),
        shared_store=store, member_name="alpha",
    ).close()  # fmt: skip
    return path


def join(tmp_path: Path, store: PostgresLocation, name: str, key: str = RECOVERY_KEY) -> Path:
    path = tmp_path / name
    join_cluster(path, store, Secret.from_text(key), make_context(), name=name).close()
    return path


def opened(path: Path) -> Gateway:
    return Gateway.open(path, make_context())


@pytest.fixture
def two(tmp_path: Path, store: PostgresLocation, first: Path) -> Iterator[tuple[Path, Path]]:
    yield first, join(tmp_path, store, "beta")


@pytest.fixture
def superuser_sql(
    shared_postgres: PostgresServer, fresh_store_login: StoreLogin
) -> Callable[[str, list[object]], None]:
    """Run SQL on the vault's database as a database administrator, triggers off."""

    def run(sql: str, params: list[object]) -> None:
        with shared_postgres.admin(fresh_store_login.login.database) as conn:
            conn.execute("SET session_replication_role = replica")
            conn.execute(sql.replace("?", "%s").encode(), params)

    return run


def secret_of(gateway: Gateway, name: str) -> bytes:
    """The secret of ``name`` as the gateway agent gets it through this member."""
    secret = CredentialService(gateway).use(name, purpose="job").secret
    assert secret is not None
    return secret.reveal()


def plant_member(run: Callable[[str, list[object]], None], row: dict[str, object]) -> None:
    """A members row written straight into the database (column names are the table's own)."""
    columns, marks = ", ".join(row), ", ".join("?" * len(row))
    run(f"INSERT INTO members ({columns}) VALUES ({marks})", list(row.values()))  # noqa: S608


def test_a_credential_put_through_one_member_opens_through_another(two: tuple[Path, Path]) -> None:
    alpha, beta = two
    with opened(alpha) as a:
        CredentialService(a).put("sales", PG, alice("shared-secret"))
    with opened(beta) as b:
        assert secret_of(b, "sales") == b"shared-secret"
        members = ClusterMembers(b).list()
        assert [(m["name"], m["state"], m["this_member"]) for m in members] == [
            ("alpha", "enabled", False),
            ("beta", "enabled", True),
        ]
        report = AuditLog(b).verify()
        assert report.ok, report.summary()
        # One trail: every entry names the member that wrote it.
        writers = {(e.action, json.loads(e.details)["member"]) for e in b.store.audit_events()}
        alpha_id, beta_id = (m["id"] for m in members)
        assert ("credential.created", alpha_id) in writers
        assert ("credential.used", beta_id) in writers
        assert ("cluster.member-joined", beta_id) in writers


def test_a_wrong_recovery_key_joins_nothing_and_leaves_no_files(
    tmp_path: Path, store: PostgresLocation, first: Path
) -> None:
    with pytest.raises(InvalidInputError, match="does not open"):
        join(tmp_path, store, "beta", key="a wrong recovery key, long enough")
    assert not (tmp_path / "beta").exists() or not any((tmp_path / "beta").iterdir())
    with opened(first) as a:
        assert [m["name"] for m in ClusterMembers(a).list()] == ["alpha"]


def test_a_disabled_member_stops_and_an_enabled_one_serves_again(two: tuple[Path, Path]) -> None:
    alpha, beta = two
    with opened(alpha) as a:
        CredentialService(a).put("sales", PG, alice())
        ClusterMembers(a).set_state("beta", "disabled")
    with opened(beta) as b, pytest.raises(MemberStoppedError, match="disabled"):
        CredentialService(b).use("sales", purpose="job")
    with opened(alpha) as a:
        ClusterMembers(a).set_state("beta", "enabled")
    with opened(beta) as b:
        assert secret_of(b, "sales") == b"pw-1"


def test_the_last_enabled_member_can_be_neither_disabled_nor_removed(first: Path) -> None:
    with opened(first) as a:
        with pytest.raises(ConflictError, match="last enabled member"):
            ClusterMembers(a).set_state("alpha", "disabled")
        with pytest.raises(ConflictError, match="last enabled member"):
            ClusterMembers(a).remove("alpha")


def test_a_removed_members_copied_keys_open_nothing_written_after_a_rotation(
    tmp_path: Path, two: tuple[Path, Path], superuser_sql: Callable[[str, list[object]], None]
) -> None:
    alpha, beta = two
    with opened(alpha) as a:
        CredentialService(a).put("before", PG, alice("old-secret"))
    stolen = tmp_path / "stolen"
    shutil.copytree(beta, stolen)  # the member's whole data dir, key file included
    with opened(beta) as b:
        kept_rows = b.store.rows("SELECT * FROM members WHERE name = 'beta'", [])
        kept_wraps = b.store.rows("SELECT * FROM member_wraps", [])
    with opened(alpha) as a:
        ClusterMembers(a).remove("beta")
        KeyRotation(a).rotate(Secret.from_text(RECOVERY_KEY))
        CredentialService(a).put("after", PG, alice("new-secret"))
    with opened(stolen) as thief, pytest.raises(KeyBackendError):
        CredentialService(thief).use("after", purpose="theft")
    # A database administrator puts the removed member's rows and wraps back:
    # its seal is valid (an older copy) but the trail says it was removed, and
    # its wraps are of a destroyed GMK version.
    for row in kept_rows:
        plant_member(superuser_sql, row)
    for wrap in kept_wraps:
        superuser_sql(
            "INSERT INTO member_wraps (member_id, gmk_version, wrapped) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            [wrap["member_id"], wrap["gmk_version"], wrap["wrapped"]],
        )
    with opened(stolen) as thief, pytest.raises((KeyBackendError, TamperedRowError)):
        CredentialService(thief).use("after", purpose="theft")


def test_a_member_row_put_back_from_an_older_copy_is_refused(
    two: tuple[Path, Path], superuser_sql: Callable[[str, list[object]], None]
) -> None:
    alpha, beta = two
    with opened(beta) as b:
        enabled_row = b.store.rows("SELECT id, state, mac FROM members WHERE name = 'beta'", [])[0]
    with opened(alpha) as a:
        ClusterMembers(a).set_state("beta", "disabled")
    superuser_sql(
        "UPDATE members SET state = ?, mac = ? WHERE id = ?",
        [enabled_row["state"], enabled_row["mac"], enabled_row["id"]],
    )
    with opened(beta) as b, pytest.raises(TamperedRowError):
        b.master_key  # noqa: B018


def test_a_member_row_planted_by_the_database_administrator_gets_no_key(
    tmp_path: Path, two: tuple[Path, Path], superuser_sql: Callable[[str, list[object]], None]
) -> None:
    alpha, _ = two
    with opened(alpha) as a:
        row = a.store.rows("SELECT * FROM members WHERE name = 'beta'", [])[0]
    planted = {**row, "id": "ffff" * 8, "name": "mallory", "public_key": bytes(range(1, 33))}
    plant_member(superuser_sql, planted)
    with opened(alpha) as a:
        with pytest.raises(TamperedRowError):
            KeyRotation(a).rotate(Secret.from_text(RECOVERY_KEY))
        # Nothing moved: the rotation was refused inside its first transaction.
        assert a.store.current_master_key().version == 1  # type: ignore[union-attr]
        assert not a.store.rows("SELECT 1 FROM member_wraps WHERE member_id = ?", [planted["id"]])


def test_a_rotation_by_one_member_reaches_every_member(two: tuple[Path, Path]) -> None:
    alpha, beta = two
    with opened(alpha) as a:
        CredentialService(a).put("sales", PG, alice("rotated"))
        result = KeyRotation(a).rotate(Secret.from_text(RECOVERY_KEY))
        assert result.complete and result.destroyed_versions == (1,)
    with opened(beta) as b:
        assert b.master_key.version == 2
        assert secret_of(b, "sales") == b"rotated"
        assert not b.store.rows("SELECT 1 FROM member_wraps WHERE gmk_version = 1", [])


def test_a_members_keystore_migration_renews_only_its_own_key(
    two: tuple[Path, Path], recovery_key: Secret
) -> None:
    alpha, beta = two
    with opened(alpha) as a:
        CredentialService(a).put("sales", PG, alice("kept"))
    with opened(beta) as b:
        before = b.store.rows("SELECT public_key FROM members WHERE name = 'beta'", [])[0]
        migrate_keystore(b, KeystoreSpec("file"), lambda: Secret(b""), recovery_key)
    with opened(beta) as b:
        after = b.store.rows("SELECT public_key FROM members WHERE name = 'beta'", [])[0]
        assert bytes(after["public_key"]) != bytes(before["public_key"])
        assert secret_of(b, "sales") == b"kept"
    with opened(alpha) as a:
        assert secret_of(a, "sales") == b"kept"


def test_a_restore_raises_the_epoch_and_stops_the_old_members(
    two: tuple[Path, Path], superuser_sql: Callable[[str, list[object]], None]
) -> None:
    _, beta = two
    superuser_sql("UPDATE settings SET value = '2' WHERE key = 'epoch'", [])
    with opened(beta) as b, pytest.raises(MemberStoppedError, match="epoch"):
        b.master_key  # noqa: B018


def test_a_database_put_back_from_before_the_members_epoch_is_not_used(
    two: tuple[Path, Path],
) -> None:
    _, beta = two
    # This member has seen epoch 2; the database says 1: an older copy of it.
    cluster_file = beta / "cluster.json"
    cluster_file.write_text(cluster_file.read_text().replace('"epoch": 1', '"epoch": 2'))
    with opened(beta) as b, pytest.raises(MemberStoppedError, match="older copy"):
        b.master_key  # noqa: B018


def test_a_schema_newer_than_this_gwvault_is_refused_and_said(
    first: Path, superuser_sql: Callable[[str, list[object]], None]
) -> None:
    superuser_sql("UPDATE settings SET value = '99' WHERE key = 'schema_version'", [])
    with pytest.raises(Exception, match="newer than this gwvault"):
        opened(first)


def test_a_cluster_rebuilt_from_its_bundle_stops_the_members_of_the_old_epoch(
    tmp_path: Path,
    two: tuple[Path, Path],
    store: PostgresLocation,
    shared_postgres: PostgresServer,
    fresh_store_login: StoreLogin,
) -> None:
    from vault.keys.keystore_binding import no_pin
    from vault.keys.relocation import export_bundle, restore_vault
    from vault.store_migration import migrate_to_shared_store

    alpha, beta = two
    recovery_key = Secret.from_text(RECOVERY_KEY)
    with opened(alpha) as a:
        CredentialService(a).put("sales", PG, alice("survives"))
        bundle = export_bundle(a, recovery_key)
    # The database is lost and made again empty, under the same name.
    database, owner = fresh_store_login.login.database, fresh_store_login.login.user
    with shared_postgres.admin() as admin:
        admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
    shared_postgres.create_database(owner, name=database)
    # The admin restores the bundle on one machine and moves it into the database.
    restored, report = restore_vault(
        tmp_path / "gamma", bundle, recovery_key, make_context(), keystore=KeystoreSpec("file"),
        pin=no_pin,
    )  # fmt: skip
    restored.close()
    assert report.opened == ["sales"]
    migrate_to_shared_store(tmp_path / "gamma", store, None, context=make_context(), pin=no_pin)
    with opened(tmp_path / "gamma") as g:
        assert g.epoch == 2 and secret_of(g, "sales") == b"survives"
        assert [m["name"] for m in ClusterMembers(g).list()] != ["alpha", "beta"]
    for old in (alpha, beta):  # members of epoch 1, pointed at the same database name
        with opened(old) as member, pytest.raises(MemberStoppedError, match="moved to epoch 2"):
            member.master_key  # noqa: B018


def test_a_member_joins_with_an_hsm_and_the_others_keep_their_key_files(
    tmp_path: Path, store: PostgresLocation, first: Path, softhsm: SoftHsm
) -> None:
    label = f"member-{secrets.token_hex(4)}"
    hsm = KeystoreSpec("pkcs11", pkcs11_module=softhsm.module, token_label=MAIN_TOKEN,
                       key_label=label)  # fmt: skip
    join_cluster(
        tmp_path / "beta", store, Secret.from_text(RECOVERY_KEY), make_context(), name="beta",
        keystore=hsm, pin=softhsm.pin_source,
    ).close()  # fmt: skip
    with opened(first) as a:
        CredentialService(a).put("sales", PG, alice("hsm-opened"))
        kinds = {m["name"]: m["keystore_kind"] for m in ClusterMembers(a).list()}
        assert kinds == {"alpha": "file", "beta": "pkcs11"}
        KeyRotation(a).rotate(Secret.from_text(RECOVERY_KEY))  # beta's HSM is not needed
    with Gateway.open(tmp_path / "beta", make_context(), softhsm.pin_source) as b:
        assert b.master_key.version == 2 and secret_of(b, "sales") == b"hsm-opened"
