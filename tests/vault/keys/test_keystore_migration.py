"""Rebinding the GMK between keystores, and unlocking a vault whose HSM is lost."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

import pytest

from agent_keys.errors import AccessDeniedError, InvalidInputError, KeyBackendError
from agent_keys.secret import Secret
from tests.conftest import RECOVERY_KEY, make_context
from tests.softhsm_fixtures import MAIN_TOKEN, SoftHsm
from tests.vault.keys.pkcs11_vaults import destroy_token_key, init_pkcs11_vault
from vault.credentials import CredentialService
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.format.keystore_binding import parse_binding
from vault.gateway import Gateway
from vault.keys.keystore_binding import KeystoreSpec, no_pin
from vault.keys.keystore_migration import migrate_keystore

NAMES = ["sales", "hr", "finance"]


def put_three(gateway: Gateway) -> None:
    service = CredentialService(gateway)
    for name in NAMES:
        payload = CredentialPayload("basic", "u", Secret.from_text(f"pw-{name}"))
        service.put(name, DataSource("mysql", "db.internal"), payload)


def all_open(path: Path, pin: object = no_pin) -> list[str]:
    with Gateway.open(path, make_context(), pin) as gateway:  # type: ignore[arg-type]
        report = CredentialService(gateway).verify()
    assert report.failed == []
    return sorted(report.opened)


def test_file_to_pkcs11_to_file_keeps_every_credential(data_dir: Path, softhsm: SoftHsm) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        put_three(gateway)
        gmk = gateway.master_key.key.reveal()
        # Its own key label: every copy of the template vault has the same gateway id,
        # so the default label could name a key another test left on the token.
        label = f"migration-{secrets.token_hex(4)}"
        to_hsm = KeystoreSpec("pkcs11", softhsm.module, MAIN_TOKEN, key_label=label)
        result = migrate_keystore(gateway, to_hsm, softhsm.pin_source)
    assert (result.from_kind, result.to_kind) == ("file", "pkcs11")
    # The key file is gone; the binding names the token.
    assert sorted(p.name for p in data_dir.iterdir()) == ["keystore.json", "vault.db"]
    assert gmk not in (data_dir / "vault.db").read_bytes()
    assert all_open(data_dir, softhsm.pin_source) == sorted(NAMES)

    with Gateway.open(data_dir, make_context(), softhsm.pin_source) as gateway:
        result = migrate_keystore(gateway, KeystoreSpec("file"), softhsm.pin_source)
        actions = [e.action for e in gateway.store.audit_events()]
    assert "destroyed the key" in result.old_binding
    assert actions.count("keystore.migrated") == 2
    assert all_open(data_dir) == sorted(NAMES)
    with Gateway.open(data_dir, make_context()) as gateway:
        assert gateway.master_key.key.reveal() == gmk  # the same GMK all along


def test_a_pkcs11_vault_keeps_no_key_bytes_in_its_data_dir(
    tmp_path: Path, softhsm: SoftHsm
) -> None:
    with init_pkcs11_vault(tmp_path / "data", softhsm) as gateway:
        put_three(gateway)
        gmk = gateway.master_key.key.reveal()
        status = gateway.status()
    assert (status["keystore"], status["keystore_token"]) == ("pkcs11", MAIN_TOKEN)
    files = sorted((tmp_path / "data").iterdir())
    assert [p.name for p in files] == ["keystore.json", "vault.db"]
    for path in files:
        assert gmk not in path.read_bytes()
    settings = _keystore_settings(tmp_path / "data")
    assert softhsm.pin not in json.dumps(settings)


def test_the_recovery_key_rebinds_to_a_file_when_the_hsm_is_gone(
    tmp_path: Path, softhsm: SoftHsm
) -> None:
    token = softhsm.new_token("doomed")
    with init_pkcs11_vault(tmp_path / "data", softhsm, token=token) as gateway:
        put_three(gateway)
    subprocess.run(
        ["softhsm2-util", "--delete-token", "--token", token], check=True, capture_output=True
    )
    with Gateway.open(tmp_path / "data", make_context(), softhsm.pin_source) as gateway:
        with pytest.raises(KeyBackendError, match="no token labelled"):
            _ = gateway.master_key
        with pytest.raises(InvalidInputError, match="does not open"):
            migrate_keystore(
                gateway,
                KeystoreSpec("file"),
                softhsm.pin_source,
                Secret.from_text("wrong " + RECOVERY_KEY),
            )
        assert _keystore_settings(tmp_path / "data")["kind"] == "pkcs11"
        result = migrate_keystore(
            gateway, KeystoreSpec("file"), softhsm.pin_source, Secret.from_text(RECOVERY_KEY)
        )
    assert result.unlocked_with == "recovery key"
    assert "could not be retired" in result.old_binding
    assert all_open(tmp_path / "data") == sorted(NAMES)


def test_a_deleted_token_key_locks_the_vault_until_the_recovery_key_rebinds_it(
    tmp_path: Path, softhsm: SoftHsm
) -> None:
    with init_pkcs11_vault(tmp_path / "data", softhsm, key_label="to-be-deleted") as gateway:
        put_three(gateway)
    destroy_token_key(softhsm, MAIN_TOKEN, "to-be-deleted")
    with Gateway.open(tmp_path / "data", make_context(), softhsm.pin_source) as gateway:
        with pytest.raises(KeyBackendError, match="not on token"):
            CredentialService(gateway).use("sales", "job")
        migrate_keystore(
            gateway, KeystoreSpec("file"), softhsm.pin_source, Secret.from_text(RECOVERY_KEY)
        )
    assert all_open(tmp_path / "data") == sorted(NAMES)


def test_a_failed_migration_changes_nothing(data_dir: Path, softhsm: SoftHsm) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        put_three(gateway)
    before = ((data_dir / "keystore.key").read_bytes(), _keystore_settings(data_dir))
    bad_targets = [
        KeystoreSpec("pkcs11", pkcs11_module="/nonexistent/libpkcs11.so", token_label=MAIN_TOKEN),
        KeystoreSpec("pkcs11", pkcs11_module=softhsm.module, token_label="no-such-token"),
        KeystoreSpec("file"),  # already bound to a file
    ]
    for target in bad_targets:
        with (
            Gateway.open(data_dir, make_context()) as gateway,
            pytest.raises((KeyBackendError, InvalidInputError)),
        ):
            migrate_keystore(gateway, target, softhsm.pin_source)
    with (
        Gateway.open(data_dir, make_context()) as gateway,
        pytest.raises(AccessDeniedError, match="PIN"),
    ):
        migrate_keystore(
            gateway,
            KeystoreSpec("pkcs11", softhsm.module, MAIN_TOKEN),
            lambda: Secret(b"0000"),
        )
    assert ((data_dir / "keystore.key").read_bytes(), _keystore_settings(data_dir)) == before
    assert sorted(p.name for p in data_dir.iterdir()) == [
        "keystore.json",
        "keystore.key",
        "vault.db",
    ]
    assert all_open(data_dir) == sorted(NAMES)


def _keystore_settings(path: Path) -> dict[str, str]:
    return parse_binding((path / "keystore.json").read_bytes(), "keystore.json")
