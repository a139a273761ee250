"""File keystore: a random 256-bit KEK in a key file only its owner can read.

The file is created with O_EXCL and mode 0600, and refused at every read when
it is a symlink, owned by another user, or readable or writable by group or
others (threat T-KS-1: another local user copies the key file); the checks are
``agent_keys.private_files``, shared with the keystore binding file.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from agent_keys.errors import KeyBackendError
from agent_keys.keywrap import KEY_BYTES, unwrap_key, wrap_key
from agent_keys.private_files import create_private_file, read_private_file
from agent_keys.randomness import RandomSource
from agent_keys.secret import Secret

_MAGIC = b"gwvault-file-keystore-v1\n"
_MAX_FILE_BYTES = 256


class FileKeystore:
    """The gateway master key's daily-use KEK, held in a 0600 file."""

    def __init__(self, path: Path, random: RandomSource) -> None:
        self._path = path
        self._random = random

    @classmethod
    def create(cls, path: Path, random: RandomSource) -> FileKeystore:
        """Write a new key file; refuses to replace an existing one."""
        encoded = _MAGIC + base64.b64encode(random(KEY_BYTES)) + b"\n"
        try:
            create_private_file(path, encoded)
        except FileExistsError as e:
            raise KeyBackendError(f"key file {path} already exists; not replacing it") from e
        except OSError as e:
            raise KeyBackendError(f"cannot create key file {path}: {e.strerror}") from e
        return cls(path, random)

    @property
    def kind(self) -> str:
        return "file"

    @property
    def path(self) -> Path:
        return self._path

    def settings(self) -> dict[str, str]:
        # Only the file name: the data dir may move, the key file moves with it.
        return {"kind": "file", "key_file": self._path.name}

    def describe(self) -> dict[str, str]:
        return {"key_file": str(self._path)}

    def retire(self) -> str:
        """Overwrite the key file with zeros, then remove it."""
        if not self._path.exists():
            return f"the old key file {self._path} was already gone"
        try:
            with self._path.open("r+b") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(0)
                f.write(b"\0" * size)
                f.flush()
                os.fsync(f.fileno())
            self._path.unlink()
        except OSError as e:
            raise KeyBackendError(
                f"cannot remove the old key file {self._path}: {e.strerror}"
            ) from e
        return f"overwrote and removed the old key file {self._path}"

    def wrap_master_key(self, master_key: Secret, context: bytes) -> bytes:
        return wrap_key(self._read_kek(), master_key, context, self._random)

    def unwrap_master_key(self, wrapped: bytes, context: bytes) -> Secret:
        return unwrap_key(self._read_kek(), wrapped, context)

    def _read_kek(self) -> Secret:
        try:
            content = read_private_file(self._path, _MAX_FILE_BYTES, "key file")
        except FileNotFoundError as e:
            raise KeyBackendError(
                f"key file {self._path} is missing; restore it from backup or"
                " restore the vault with the recovery key"
            ) from e
        except OSError as e:
            raise KeyBackendError(f"cannot open key file {self._path}: {e.strerror}") from e
        return _parse_key_file(content, self._path)


def _parse_key_file(content: bytes, path: Path) -> Secret:
    malformed = KeyBackendError(f"key file {path} is not a gwvault key file")
    if len(content) > _MAX_FILE_BYTES or not content.startswith(_MAGIC):
        raise malformed
    try:
        key = base64.b64decode(content[len(_MAGIC) :].strip(), validate=True)
    except binascii.Error as e:
        raise malformed from e
    if len(key) != KEY_BYTES:
        raise malformed
    return Secret(key)
