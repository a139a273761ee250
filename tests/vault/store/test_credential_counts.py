"""The credential counts of ``status`` (schema 5): kept by triggers in the writing
transaction, right after every kind of change, and never what a rotation decides by."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent_keys.secret import Secret
from tests.conftest import RECOVERY_KEY, make_context
from tests.vault.keys.rotation_helpers import insert_credentials, key_state
from tests.vault.store.old_schemas import copy_schema_3_vault, rewind_schema
from vault.credentials import CredentialService
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway
from vault.keys.keystore_binding import KeystoreSpec, no_pin
from vault.keys.relocation import export_bundle, restore_vault
from vault.keys.rotation import KeyRotation


class _Killed(Exception):
    """Raised from the progress report: the rotation stops after its first batch."""


def _stop(done: int, total: int) -> None:
    raise _Killed


def _counts(path: Path) -> tuple[int, dict[str, int]]:
    with Gateway.open(path, make_context()) as gateway:
        status = gateway.status()
    return status["credentials"], status["credentials_by_key_version"]


def _rows(path: Path) -> dict[str, int]:
    """The same figures counted from the rows themselves."""
    return {str(v): n for v, n in key_state(path)["credentials"].items()}


def _put(path: Path, name: str, secret: str = "pw") -> None:
    with Gateway.open(path, make_context()) as gateway:
        CredentialService(gateway).put(
            name,
            DataSource("mysql", "db.internal"),
            CredentialPayload("basic", "u", Secret.from_text(secret)),
        )


def test_counts_follow_put_update_and_delete(data_dir: Path) -> None:
    assert _counts(data_dir) == (0, {})
    for name in ("sales", "hr", "finance"):
        _put(data_dir, name)
    _put(data_dir, "sales", "pw-2")  # an update replaces the row: still three
    assert _counts(data_dir) == (3, {"1": 3}) and _rows(data_dir) == {"1": 3}
    with Gateway.open(data_dir, make_context()) as gateway:
        CredentialService(gateway).delete("hr")  # kept, with its data key, until purged
        assert gateway.status()["credentials_deleted"] == 1
    assert _counts(data_dir) == (3, {"1": 3})
    with Gateway.open(data_dir, make_context()) as gateway:
        CredentialService(gateway).purge("hr")
        assert gateway.status()["credentials_deleted"] == 0
    assert _counts(data_dir) == (2, {"1": 2})


def test_a_failed_write_leaves_the_counts_as_they_were(gateway: Gateway) -> None:
    insert_credentials(gateway.data_dir.path, 3)
    with pytest.raises(RuntimeError), gateway.store.write():
        gateway.store.execute("DELETE FROM credentials", [])
        raise RuntimeError("the change failed half-way")
    assert gateway.status()["credentials_by_key_version"] == {"1": 3}


def test_counts_show_both_versions_mid_rotation_and_one_after(data_dir: Path) -> None:
    insert_credentials(data_dir, 25)
    recovery_key = Secret.from_text(RECOVERY_KEY)
    with Gateway.open(data_dir, make_context()) as gateway, pytest.raises(_Killed):
        KeyRotation(gateway).rotate(recovery_key, 10, _stop)
    assert _counts(data_dir) == (25, {"1": 15, "2": 10}) == (25, _rows(data_dir))
    _put(data_dir, "written-mid-rotation")  # under the new version
    assert _counts(data_dir) == (26, {"1": 15, "2": 11})
    with Gateway.open(data_dir, make_context()) as gateway:
        assert KeyRotation(gateway).rotate(recovery_key).complete
    assert _counts(data_dir) == (26, {"2": 26}) == (26, _rows(data_dir))


def test_a_rotation_decides_from_the_rows_not_from_the_counts(data_dir: Path) -> None:
    # A database writer who zeroes the old version's count must not make the
    # rotation destroy a GMK that data keys are still wrapped under.
    insert_credentials(data_dir, 12)
    recovery_key = Secret.from_text(RECOVERY_KEY)
    with Gateway.open(data_dir, make_context()) as gateway, pytest.raises(_Killed):
        KeyRotation(gateway).rotate(recovery_key, 5, _stop)
    with sqlite3.connect(data_dir / "vault.db") as db:
        db.execute("DELETE FROM credential_counts")
    with Gateway.open(data_dir, make_context()) as gateway:
        result = KeyRotation(gateway).rotate(recovery_key)
        assert result.rewrapped == 7 and result.destroyed_versions == (1,)
        assert CredentialService(gateway).verify().failed == []


def test_counts_come_along_in_a_restore(data_dir: Path, tmp_path: Path) -> None:
    insert_credentials(data_dir, 4)
    recovery_key = Secret.from_text(RECOVERY_KEY)
    with Gateway.open(data_dir, make_context()) as gateway:
        bundle = export_bundle(gateway, recovery_key)
    restored, report = restore_vault(
        tmp_path / "new", bundle, recovery_key, make_context(),
        keystore=KeystoreSpec("file"), pin=no_pin,
    )  # fmt: skip
    restored.close()
    assert len(report.opened) == 4
    assert _counts(tmp_path / "new") == (4, {"1": 4})
    _put(tmp_path / "new", "after-restore")
    assert _counts(tmp_path / "new") == (5, {"1": 5})


def test_an_upgrade_from_schema_4_counts_the_rows_once(data_dir: Path) -> None:
    insert_credentials(data_dir, 6)
    with Gateway.open(data_dir, make_context()) as gateway:
        master_key = gateway.master_key
    rewind_schema(data_dir / "vault.db", 4, master_key)
    assert _counts(data_dir) == (6, {"1": 6})
    _put(data_dir, "ds-00002", "pw-new")  # an update after the upgrade
    _put(data_dir, "new-one")
    assert _counts(data_dir) == (7, {"1": 7})


def test_the_schema_3_vector_upgrades_with_its_credentials_counted(tmp_path: Path) -> None:
    path = copy_schema_3_vault(tmp_path / "v3")
    counted = _rows(path)
    assert counted  # the vector holds credentials
    assert _counts(path) == (sum(counted.values()), counted)


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE credential_counts SET n = 'many'",
        "UPDATE credential_counts SET n = -5",
        "UPDATE credential_counts SET n = x'00'",
        "INSERT INTO credential_counts VALUES (9, 9223372036854775807)",
        "DROP TABLE credential_counts",
    ],
)
def test_counts_edited_outside_gwvault_do_not_break_status(data_dir: Path, damage: str) -> None:
    insert_credentials(data_dir, 2)
    with sqlite3.connect(data_dir / "vault.db") as db:
        db.execute(damage)
    with Gateway.open(data_dir, make_context()) as gateway:
        if damage.startswith("DROP"):
            from agent_keys.errors import StorageError

            with pytest.raises(StorageError):
                gateway.status()
            return
        status = gateway.status()
    assert all(isinstance(n, int) and n > 0 for n in status["credentials_by_key_version"].values())
