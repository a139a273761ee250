"""Initialising and opening a vault: the key hierarchy on disk, and refusals."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from agent_keys.errors import (
    AccessDeniedError,
    ConflictError,
    InvalidInputError,
    KeyBackendError,
    StorageError,
)
from agent_keys.gateway_identity import KeyType
from agent_keys.keywrap import unwrap_key
from agent_keys.master_key import master_key_context
from agent_keys.recovery_key import RecoveryKdfParams, derive_recovery_kek
from agent_keys.secret import Secret
from tests.conftest import make_context
from vault.credentials import VerifyReport
from vault.data_dir import CREATING_MARKER, DataDir
from vault.gateway import FILE_KEYSTORE, Gateway
from vault.keys.keystore_binding import no_pin
from vault.keys.relocation import export_bundle, restore_vault


def test_status_reports_the_contract_keys(any_data_dir: Path, key_type: KeyType) -> None:
    with Gateway.open(any_data_dir, make_context()) as gateway:
        status = gateway.status()
    assert {"gateway_id", "name", "key_type", "cert_thumbprint", "cert_not_after",
            "credentials", "keystore", "epoch"} <= status.keys()  # fmt: skip
    assert (status["key_type"], status["keystore"], status["epoch"]) == (key_type, "file", 1)
    assert status["credentials"] == 0


def test_files_are_private(data_dir: Path) -> None:
    assert os.stat(data_dir / "keystore.key").st_mode & 0o777 == 0o600
    assert os.stat(data_dir / "vault.db").st_mode & 0o077 == 0


def test_recovery_wrap_unlocks_the_same_master_key(gateway: Gateway, recovery_key: Secret) -> None:
    record = gateway.store.current_master_key()
    assert record is not None
    params = RecoveryKdfParams(
        record.recovery_salt, record.recovery_opslimit, record.recovery_memlimit
    )
    assert params.opslimit >= 3 and params.memlimit >= 256 * 1024 * 1024
    kek = derive_recovery_kek(recovery_key, params)
    context = master_key_context(gateway.gateway_id, record.version)
    assert unwrap_key(kek, record.recovery_wrapped, context) == gateway.master_key.key


def test_no_unwrapped_key_is_on_disk(any_data_dir: Path) -> None:
    with Gateway.open(any_data_dir, make_context()) as gateway:
        gmk = gateway.master_key.key.reveal()
        private_keys = [key.to_pkcs8().reveal() for key in gateway.private_keys.values()]
    on_disk = b"".join(path.read_bytes() for path in any_data_dir.iterdir())
    assert gmk not in on_disk
    for der in private_keys:
        assert der not in on_disk
        assert der[-40:] not in on_disk  # not even the tail of the PKCS#8 (the key bytes)


def test_init_refuses_to_overwrite_a_vault(data_dir: Path, recovery_key: Secret) -> None:
    before = {p.name: p.read_bytes() for p in data_dir.iterdir()}
    with pytest.raises(ConflictError, match="refusing to overwrite"):
        Gateway.initialize(data_dir, "other", "ec-p256", recovery_key, make_context())
    assert {p.name: p.read_bytes() for p in data_dir.iterdir()} == before


def test_init_refuses_a_non_empty_directory(tmp_path: Path, recovery_key: Secret) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConflictError, match="not empty"):
        Gateway.initialize(tmp_path, "gw", "ec-p256", recovery_key, make_context())
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("gw", "short"),
        ("gw", "password1234"),
        ("", "orbit walnut trellis quasar"),
        ("a\nb", "orbit walnut trellis quasar"),
    ],
)
def test_bad_init_input_creates_nothing(tmp_path: Path, name: str, key: str) -> None:
    target = tmp_path / "data"
    with pytest.raises(InvalidInputError):
        Gateway.initialize(target, name, "ec-p256", Secret.from_text(key), make_context())
    assert not target.exists()


def test_a_failure_during_init_leaves_no_half_made_vault(
    tmp_path: Path, recovery_key: Secret
) -> None:
    target = tmp_path / "data"

    def failing_random(n: int) -> bytes:
        raise OSError("entropy source failed")

    context = make_context()
    broken = type(context)(actor=context.actor, channel="cli", random=failing_random)
    with pytest.raises(OSError, match="entropy"):
        Gateway.initialize(target, "gw", "ec-p256", recovery_key, broken)
    assert list(target.iterdir()) == []


def test_a_world_readable_key_file_is_refused(data_dir: Path) -> None:
    (data_dir / "keystore.key").chmod(0o644)
    with (
        Gateway.open(data_dir, make_context()) as gateway,
        pytest.raises(AccessDeniedError, match="chmod 600"),
    ):
        _ = gateway.master_key


def test_a_missing_key_file_is_a_key_backend_error(data_dir: Path) -> None:
    (data_dir / "keystore.key").unlink()
    with (
        Gateway.open(data_dir, make_context()) as gateway,
        pytest.raises(KeyBackendError, match="recovery key"),
    ):
        _ = gateway.master_key


def test_a_key_file_from_another_vault_does_not_unlock(
    data_dir: Path, vault_templates: dict[KeyType, Path]
) -> None:
    shutil.copy(vault_templates["rsa-3072"] / "keystore.key", data_dir / "keystore.key")
    with (
        Gateway.open(data_dir, make_context()) as gateway,
        pytest.raises(KeyBackendError, match="does not unlock"),
    ):
        _ = gateway.master_key


def test_a_group_writable_data_dir_is_refused(data_dir: Path) -> None:
    data_dir.chmod(0o770)
    with pytest.raises(AccessDeniedError, match="chmod 700"):
        Gateway.open(data_dir, make_context())


def test_a_directory_that_is_not_a_vault_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="not a gwvault data dir"):
        Gateway.open(tmp_path, make_context())
    with pytest.raises(StorageError, match="does not exist"):
        Gateway.open(tmp_path / "missing", make_context())


@pytest.mark.parametrize(
    "content", [b"", b"SQLite format 3\x00" + b"\xff" * 200, b"not a database at all" * 100]
)
def test_a_corrupt_database_is_a_storage_error(data_dir: Path, content: bytes) -> None:
    for name in ("vault.db-wal", "vault.db-shm"):
        (data_dir / name).unlink(missing_ok=True)
    (data_dir / "vault.db").write_bytes(content)
    with pytest.raises(StorageError):
        Gateway.open(data_dir, make_context())


def _killed_at_the_last_step(create: Callable[[], object]) -> None:
    """Run ``create`` in a child process that dies (as kill -9 would: no cleanup)
    just before the vault would be marked complete."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        try:
            DataDir.finish_creation = lambda self: os._exit(137)  # type: ignore[method-assign]
            create()
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 137


def test_an_init_killed_midway_is_reported_and_the_next_init_starts_afresh(
    tmp_path: Path, recovery_key: Secret
) -> None:
    target = tmp_path / "data"
    _killed_at_the_last_step(
        lambda: Gateway.initialize(target, "gw", "ec-p256", recovery_key, make_context())
    )
    assert {"vault.db", "keystore.key", CREATING_MARKER} <= {p.name for p in target.iterdir()}
    with pytest.raises(StorageError, match="interrupted; run it again"):
        Gateway.open(target, make_context())
    Gateway.initialize(target, "gw", "ec-p256", recovery_key, make_context()).close()
    with Gateway.open(target, make_context()) as gateway:
        assert gateway.name == "gw" and not (target / CREATING_MARKER).exists()


def test_a_restore_killed_midway_is_reported_and_the_next_restore_starts_afresh(
    data_dir: Path, recovery_key: Secret, tmp_path: Path
) -> None:
    with Gateway.open(data_dir, make_context()) as gateway:
        bundle = export_bundle(gateway, recovery_key)
        gateway_id = gateway.gateway_id
    target = tmp_path / "restored"

    def restore() -> tuple[Gateway, VerifyReport]:
        return restore_vault(
            target, bundle, recovery_key, make_context(), keystore=FILE_KEYSTORE, pin=no_pin
        )

    _killed_at_the_last_step(restore)
    with pytest.raises(StorageError, match="interrupted"):
        Gateway.open(target, make_context())
    restored, report = restore()
    with restored:
        assert restored.gateway_id == gateway_id and report.failed == []
