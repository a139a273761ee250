"""The gateway's data directory: the vault database, the keystore binding, the key file.

Created 0700 and refused when group or others may write to it (threat T-DD-1:
another local user swaps the database or the key file).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from agent_keys.errors import AccessDeniedError, ConflictError, StorageError
from agent_keys.private_files import sync_directory

# A cluster member's: where the shared database is, who this member is, and
# the store's password (vault.store.locator); with them, there is no vault.db.
from vault.store.locator import CLUSTER_FILE, STORE_PASSWORD_FILE

DB_FILE = "vault.db"
KEY_FILE = "keystore.key"
# Which keystore unlocks the vault (vault.keys.binding_file); never the database.
BINDING_FILE = "keystore.json"
# A binding a keystore command wrote but may not have committed yet.
PENDING_BINDING_FILE = "keystore.json.pending"
# Present from the start of an init or restore until the vault is complete: a
# process killed in between leaves it, so its half-made files are known to be
# leftovers (removed by the next init or restore), never mistaken for a vault.
CREATING_MARKER = ".gwvault-creating"


@dataclass(frozen=True)
class DataDir:
    """Paths inside one gateway data directory."""

    path: Path

    @property
    def db_path(self) -> Path:
        return self.path / DB_FILE

    @property
    def key_file(self) -> Path:
        return self.path / KEY_FILE

    @property
    def binding_path(self) -> Path:
        return self.path / BINDING_FILE

    @property
    def pending_binding_path(self) -> Path:
        return self.path / PENDING_BINDING_FILE

    @property
    def marker(self) -> Path:
        return self.path / CREATING_MARKER

    @property
    def cluster_file(self) -> Path:
        return self.path / CLUSTER_FILE

    def has_vault(self) -> bool:
        files = (self.db_path, self.key_file, self.binding_path, self.cluster_file)
        return any(p.exists() for p in files)

    @classmethod
    def create(cls, path: Path) -> DataDir:
        """Make (or adopt an empty) directory for a new vault; never overwrite one.

        The files of an init or restore that was killed are removed first.
        ``finish_creation`` marks the vault complete.
        """
        data_dir = cls(path)
        if data_dir.marker.is_file() and not data_dir.marker.is_symlink():
            data_dir.remove_new_files()
        if data_dir.has_vault():
            raise ConflictError(f"{path} already holds a vault; refusing to overwrite it")
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            if any(path.iterdir()):
                raise ConflictError(f"{path} is not empty; choose an empty or new directory")
            os.chmod(path, 0o700)
            os.close(os.open(data_dir.marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except NotADirectoryError as e:
            raise StorageError(f"{path} is not a directory") from e
        except OSError as e:
            raise StorageError(f"cannot create {path}: {e.strerror}") from e
        return data_dir

    def finish_creation(self) -> None:
        """The vault is complete: from now on it is opened, never cleaned away."""
        try:
            self.marker.unlink()
            sync_directory(self.path)
        except OSError as e:
            raise StorageError(f"cannot finish the vault in {self.path}: {e.strerror}") from e

    @classmethod
    def open(cls, path: Path) -> DataDir:
        """An existing vault's directory, after checking who may write to it."""
        try:
            st = os.stat(path)
        except FileNotFoundError as e:
            raise StorageError(f"{path} does not exist; run: gwvault init --name NAME") from e
        except OSError as e:
            raise StorageError(f"cannot read {path}: {e.strerror}") from e
        if not stat.S_ISDIR(st.st_mode):
            raise StorageError(f"{path} is not a directory")
        if st.st_mode & 0o022:
            raise AccessDeniedError(_not_private(path, st))
        data_dir = cls(path)
        if data_dir.marker.exists():
            raise StorageError(
                f"{path} holds an init or restore that was interrupted; run it again"
                " (it starts afresh)"
            )
        if not data_dir.db_path.is_file() and not data_dir.cluster_file.exists():
            raise StorageError(
                f"{path} is not a gwvault data dir (no {DB_FILE}); run: gwvault init --name NAME"
            )
        return data_dir

    def remove_new_files(self) -> None:
        """Undo a failed init: remove the files it created (never anything else)."""
        bindings = (BINDING_FILE, PENDING_BINDING_FILE)
        for name in (DB_FILE, DB_FILE + "-wal", DB_FILE + "-shm", KEY_FILE, CREATING_MARKER,
                     CLUSTER_FILE, STORE_PASSWORD_FILE,
                     *bindings, *(name + ".tmp" for name in bindings)):  # fmt: skip
            (self.path / name).unlink(missing_ok=True)


def _not_private(path: Path, st: os.stat_result) -> str:
    """Why a data dir others may write to is refused, and what to do instead.

    A shared directory (sticky like /tmp, writable by everyone, or another
    user's) is never to be made private: advising ``chmod 700 /tmp`` would break
    every other user of it.  Only the caller's own directory gets the chmod advice.
    """
    shared = st.st_mode & (stat.S_ISVTX | stat.S_IWOTH) or st.st_uid != os.geteuid()
    if shared:
        return (
            f"{path} is a shared directory, not a private data dir (others may write to it);"
            f" choose a dedicated one, e.g. --data-dir {path / 'gw'} (created 0700 by"
            " gwvault init), or the default ./gwvault-data"
        )
    return f"{path} is writable by its group; run: chmod 700 {path}"
