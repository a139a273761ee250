"""The keystore binding file: the database never names a library to load (T-HSM-8),
the binding is refused unless it is ours alone and well formed (T-KS-3), old
vaults upgrade, and a keystore command killed at any step leaves a vault that
opens (T-CC-1)."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from agent_keys.errors import AccessDeniedError, KeyBackendError, StorageError
from agent_keys.secret import Secret
from tests.conftest import RECOVERY_KEY, make_context
from tests.softhsm_fixtures import MAIN_TOKEN, PlantedModule, SoftHsm
from tests.vault.keys.pkcs11_vaults import init_pkcs11_vault
from tests.vault.store.old_schemas import rewind_keystore_binding
from vault.agent import GatewayAgent
from vault.credentials import CredentialService
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway
from vault.keys import binding_file
from vault.keys.keystore_binding import KeystoreSpec, no_pin
from vault.keys.keystore_migration import migrate_keystore
from vault.keys.module_trust import trust_module
from vault.store.vault_store import VaultStore


def put_login(gateway: Gateway, name: str = "sales") -> None:
    payload = CredentialPayload("basic", "u", Secret.from_text(f"pw-{name}"))
    CredentialService(gateway).put(name, DataSource("mysql", "db.internal"), payload)


def write_setting(data_dir: Path, key: str, value: str) -> None:
    """What someone who can write vault.db (and nothing else) does."""
    with sqlite3.connect(data_dir / "vault.db") as db:
        db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", [key, value])


def planted_setting(planted: PlantedModule) -> str:
    return json.dumps(
        {
            "kind": "pkcs11",
            "module": str(planted.library),
            "token_label": MAIN_TOKEN,
            "key_label": "k",
            "created_key": "no",
        }
    )


def use_it_every_way(data_dir: Path, pin: Callable[[], Secret] | None = None) -> None:
    """Open the vault as status, keystore show, credentials verify and (for a file
    vault: the agent is given no PIN) the agent do."""
    with Gateway.open(data_dir, make_context(), pin or no_pin) as gateway:
        assert gateway.status()["credentials"] == 1
        gateway.keystore.describe()
        assert CredentialService(gateway).verify().failed == []
    if pin is None:
        login = GatewayAgent(data_dir).use_credential("sales", job_id="job-1")
        assert login.secret == Secret.from_text("pw-sales")


def test_a_database_writer_cannot_make_a_file_vault_load_a_library(
    data_dir: Path, planted_module: PlantedModule
) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        put_login(gateway)
    write_setting(data_dir, "keystore", planted_setting(planted_module))
    use_it_every_way(data_dir)
    assert not planted_module.was_loaded()


def test_a_database_writer_cannot_make_a_pkcs11_vault_load_another_library(
    tmp_path: Path, softhsm: SoftHsm, planted_module: PlantedModule
) -> None:
    with init_pkcs11_vault(tmp_path / "data", softhsm, key_label="db-writer") as gateway:
        put_login(gateway)
    write_setting(tmp_path / "data", "keystore", planted_setting(planted_module))
    # The digest only chooses between binding files gwvault wrote itself.
    write_setting(tmp_path / "data", "keystore_binding_sha256", "0" * 64)
    use_it_every_way(tmp_path / "data", softhsm.pin_source)
    assert not planted_module.was_loaded()


def test_an_old_pkcs11_vault_never_loads_the_module_its_database_names(
    tmp_path: Path, softhsm: SoftHsm, planted_module: PlantedModule
) -> None:
    data = tmp_path / "data"
    with init_pkcs11_vault(data, softhsm, key_label="old-vault") as gateway:
        put_login(gateway)
    rewind_keystore_binding(data, json.loads(planted_setting(planted_module)))
    with Gateway.open(data, make_context(), softhsm.pin_source) as gateway:
        assert gateway.status()["keystore"] == "pkcs11"
        with pytest.raises(KeyBackendError, match="keystore trust-module --pkcs11-module"):
            CredentialService(gateway).verify()
    assert not planted_module.was_loaded()
    assert not (data / "keystore.json").exists()

    with Gateway.open(data, make_context(), softhsm.pin_source) as gateway:
        result = trust_module(gateway, softhsm.pin_source, softhsm.module, MAIN_TOKEN, "old-vault")
        assert result.changed and result.previous_sha256 is None
        trusted = [e for e in gateway.store.audit_events() if e.action == "keystore.module-trusted"]
        assert gateway.store.setting("keystore") is None  # the old value is gone
    assert len(trusted) == 1 and result.module_sha256 in (trusted[0].details or "")
    bound = json.loads((data / "keystore.json").read_text())
    assert (bound["module"], bound["created_key"]) == (softhsm.module, "no")
    use_it_every_way(data, softhsm.pin_source)


def test_an_old_file_vault_gets_its_binding_file_on_first_open(data_dir: Path) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        put_login(gateway)
    rewind_keystore_binding(data_dir, {"kind": "file", "key_file": "keystore.key"})
    use_it_every_way(data_dir)
    binding = data_dir / "keystore.json"
    assert binding.stat().st_mode & 0o777 == 0o600
    assert json.loads(binding.read_text())["key_file"] == "keystore.key"


@pytest.mark.parametrize("key_file", ["../keystore.key", "/etc/passwd", ".hidden", "a/b", ""])
def test_an_old_key_file_setting_outside_the_data_dir_is_refused(
    data_dir: Path, key_file: str
) -> None:
    rewind_keystore_binding(data_dir, {"kind": "file", "key_file": key_file})
    with pytest.raises(StorageError, match="outside its data dir"):
        Gateway.open(data_dir, make_context())
    assert not (data_dir / "keystore.json").exists()


def _symlinked(binding: Path) -> None:
    copy = binding.with_name("copy.json")
    copy.write_bytes(binding.read_bytes())
    copy.chmod(0o600)
    binding.unlink()
    binding.symlink_to(copy)


def _fifo(binding: Path) -> None:
    binding.unlink()
    os.mkfifo(binding, 0o600)


def _not_ours(binding: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can give a file to another user")
    os.chown(binding, 65534, 65534)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_symlinked, "symlink"),
        (lambda b: b.chmod(0o644), "chmod 600"),
        (lambda b: b.chmod(0o640), "chmod 600"),
        (lambda b: b.chmod(0o602), "chmod 600"),
        (_fifo, "not a regular file"),
        (_not_ours, "owned by another user"),
    ],
    ids=["symlink", "0644", "0640", "0602", "fifo", "not-ours"],
)
def test_a_binding_file_that_is_not_ours_alone_is_refused(
    data_dir: Path, change: Callable[[Path], None], message: str
) -> None:
    change(data_dir / "keystore.json")
    with pytest.raises(AccessDeniedError, match=message):
        Gateway.open(data_dir, make_context())


SHA = "a" * 64
PKCS11 = {
    "format": "gwvault-keystore-binding/1",
    "kind": "pkcs11",
    "module": "/usr/lib/x.so",
    "module_sha256": SHA,
    "token_label": "t",
    "key_label": "k",
    "created_key": "no",
}
DAMAGED = {
    "empty": b"",
    "not json": b"{",
    "not an object": b"[]",
    "nan": b'{"kind": NaN}',
    "not utf-8": b'{"kind": "\xff"}',
    "deep": b"[" * 3000,
    "too big": b" " * 5000 + b"{}",
    "unknown kind": json.dumps({**PKCS11, "kind": "shell"}).encode(),
    "extra member": json.dumps({**PKCS11, "preload": "/tmp/x.so"}).encode(),
    "missing hash": json.dumps({k: v for k, v in PKCS11.items() if k != "module_sha256"}).encode(),
    "number": json.dumps({**PKCS11, "created_key": True}).encode(),
    "relative module": json.dumps({**PKCS11, "module": "x.so"}).encode(),
    "bad hash": json.dumps({**PKCS11, "module_sha256": "A" * 64}).encode(),
    "long label": json.dumps({**PKCS11, "token_label": "t" * 33}).encode(),
    "format": json.dumps({**PKCS11, "format": "gwvault-keystore-binding/9"}).encode(),
    "twice": b'{"kind": "file", "kind": "file", "key_file": "k", "format": "x"}',
    "key file path": json.dumps(
        {"format": PKCS11["format"], "kind": "file", "key_file": "../keystore.key"}
    ).encode(),
}


@pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_binding_file_is_one_storage_error_and_changes_nothing(
    data_dir: Path, content: bytes
) -> None:
    binding = data_dir / "keystore.json"
    binding.write_bytes(content)
    before = {p.name: p.read_bytes() for p in data_dir.iterdir()}
    with pytest.raises(StorageError, match=r"keystore binding .* is damaged") as refused:
        Gateway.open(data_dir, make_context())
    assert "\n" not in str(refused.value)
    assert {p.name: p.read_bytes() for p in data_dir.iterdir()} == before


def test_a_vault_without_its_binding_file_says_what_to_do_and_the_recovery_key_rebinds_it(
    data_dir: Path,
) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        put_login(gateway)
    (data_dir / "keystore.json").unlink()
    with Gateway.open(data_dir, make_context()) as gateway:
        assert gateway.status()["keystore"] == "unbound"
        with pytest.raises(KeyBackendError, match=r"keystore\.json is missing"):
            _ = gateway.master_key
        migrate_keystore(gateway, KeystoreSpec("file"), no_pin, Secret.from_text(RECOVERY_KEY))
    use_it_every_way(data_dir)


# -- a migration killed at each step -------------------------------------------


def _killed_at(target: object, name: str, run: Callable[[], object]) -> None:
    """Run ``run`` in a child that dies (as kill -9 would: no cleanup) when it calls
    ``target.name``."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        try:
            setattr(target, name, lambda *args, **kwargs: os._exit(137))
            run()
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 137


def _migrate_to_a_new_key_file(data_dir: Path) -> Callable[[], object]:
    def run() -> object:
        with Gateway.open(data_dir, make_context()) as gateway:
            recovery_key = Secret.from_text(RECOVERY_KEY)
            return migrate_keystore(gateway, KeystoreSpec("file"), no_pin, recovery_key)

    return run


def _bound_key_file(data_dir: Path) -> str:
    name: str = json.loads((data_dir / "keystore.json").read_text())["key_file"]
    return name


def test_a_migration_killed_before_its_commit_opens_with_the_old_keystore(data_dir: Path) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        put_login(gateway)
    migrate = _migrate_to_a_new_key_file(data_dir)
    # Dies inside the transaction: the new wraps never commit.
    _killed_at(VaultStore, "rebind_master_key", migrate)
    assert (data_dir / "keystore.json.pending").exists()
    assert _bound_key_file(data_dir) == "keystore.key"
    use_it_every_way(data_dir)
    migrate()  # the next run replaces the leftover
    assert _bound_key_file(data_dir) != "keystore.key"
    assert not (data_dir / "keystore.json.pending").exists()
    use_it_every_way(data_dir)


def test_a_migration_killed_after_its_commit_opens_with_the_new_keystore(data_dir: Path) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        put_login(gateway)
    # Dies after the transaction, before the pending binding is renamed.
    _killed_at(binding_file, "_promote_pending", _migrate_to_a_new_key_file(data_dir))
    pending = json.loads((data_dir / "keystore.json.pending").read_text())
    assert _bound_key_file(data_dir) == "keystore.key"
    use_it_every_way(data_dir)
    assert not (data_dir / "keystore.json.pending").exists()
    assert _bound_key_file(data_dir) == pending["key_file"] != "keystore.key"
