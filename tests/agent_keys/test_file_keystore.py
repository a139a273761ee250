import os
from pathlib import Path

import pytest

from agent_keys.errors import AccessDeniedError, IntegrityError, KeyBackendError
from agent_keys.file_keystore import FileKeystore
from agent_keys.randomness import system_random
from agent_keys.secret import Secret

GMK = Secret(b"\x42" * 32)


@pytest.fixture
def keystore(tmp_path: Path) -> FileKeystore:
    return FileKeystore.create(tmp_path / "keystore.key", system_random)


def test_key_file_is_created_owner_only_and_round_trips(keystore: FileKeystore) -> None:
    assert os.stat(keystore.path).st_mode & 0o777 == 0o600
    wrapped = keystore.wrap_master_key(GMK, b"ctx")
    assert keystore.unwrap_master_key(wrapped, b"ctx") == GMK
    assert GMK.reveal() not in keystore.path.read_bytes()


def test_create_never_replaces_an_existing_key_file(keystore: FileKeystore) -> None:
    before = keystore.path.read_bytes()
    with pytest.raises(KeyBackendError, match="already exists"):
        FileKeystore.create(keystore.path, system_random)
    assert keystore.path.read_bytes() == before


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o666, 0o620])
def test_key_file_accessible_to_group_or_others_is_refused(
    keystore: FileKeystore, mode: int
) -> None:
    wrapped = keystore.wrap_master_key(GMK, b"ctx")
    keystore.path.chmod(mode)
    with pytest.raises(AccessDeniedError, match="chmod 600"):
        keystore.unwrap_master_key(wrapped, b"ctx")


def test_symlinked_key_file_is_refused(keystore: FileKeystore, tmp_path: Path) -> None:
    wrapped = keystore.wrap_master_key(GMK, b"ctx")
    link = tmp_path / "link.key"
    link.symlink_to(keystore.path)
    with pytest.raises(AccessDeniedError, match="symlink"):
        FileKeystore(link, system_random).unwrap_master_key(wrapped, b"ctx")


def test_missing_key_file_says_how_to_recover(keystore: FileKeystore) -> None:
    wrapped = keystore.wrap_master_key(GMK, b"ctx")
    keystore.path.unlink()
    with pytest.raises(KeyBackendError, match="recovery key"):
        keystore.unwrap_master_key(wrapped, b"ctx")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a key file",
        b"gwvault-file-keystore-v1\n!!!!\n",
        b"gwvault-file-keystore-v1\nAAAA\n",
        b"x" * 5000,
    ],
)
def test_malformed_key_files_are_refused(keystore: FileKeystore, content: bytes) -> None:
    keystore.path.write_bytes(content)
    with pytest.raises(KeyBackendError, match="not a gwvault key file"):
        keystore.unwrap_master_key(b"\x01" + b"\x00" * 60, b"ctx")


def test_another_key_file_does_not_unwrap(keystore: FileKeystore, tmp_path: Path) -> None:
    wrapped = keystore.wrap_master_key(GMK, b"ctx")
    other = FileKeystore.create(tmp_path / "other.key", system_random)
    with pytest.raises(IntegrityError):
        other.unwrap_master_key(wrapped, b"ctx")
