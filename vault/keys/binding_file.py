"""Reading and writing the keystore binding file, crash-safely.

The binding (``keystore.json``, format in ``vault.format.keystore_binding``) is
read like the key file: no symlink, ours, 0600 (threat T-KS-3).  The database
keeps only the SHA-256 of the binding its master-key wraps were made under
(setting ``keystore_binding_sha256``), never a path to load: it lets a vault
opened after a crash tell which of two bindings its wraps belong to, and a
database writer who changes it can at most pick between two files gwvault
itself wrote (each still checked, its module still hashed).

Rebinding a live vault (``keystore migrate``, ``keystore trust-module``):

1. write the new binding as ``keystore.json.pending`` (atomically);
2. in one transaction: the caller's change (new wraps, its audit entry) and the
   new binding's SHA-256;
3. rename the pending binding over ``keystore.json``.

Killed before 2 commits, the vault opens with the old binding (the pending one
is ignored and replaced by the next command); killed after, the next open sees
that the database names the pending binding and finishes step 3.  Either way
the vault opens with the keystore its wraps were made under.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from agent_keys.errors import ConflictError, StorageError, VaultError
from agent_keys.keystore import Keystore
from agent_keys.private_files import read_private_file, replace_private_file, sync_directory
from vault.data_dir import KEY_FILE, DataDir
from vault.format.keystore_binding import (
    MAX_BINDING_BYTES,
    check_key_file_name,
    encode_binding,
    parse_binding,
)
from vault.format.strict_json import parse_json_object
from vault.store.vault_store import VaultStore

BINDING_DIGEST = "keystore_binding_sha256"
"""Setting: the SHA-256 of the binding file the master-key wraps were made under."""
LEGACY_SETTING = "keystore"
"""Setting where vaults before the binding file named their keystore (never trusted)."""


def digest_setting(store: VaultStore) -> str:
    """The setting holding the digest: one per cluster member (each has its own
    keystore and binding), the one ``BINDING_DIGEST`` on a single machine."""
    return BINDING_DIGEST if store.member_id is None else f"{BINDING_DIGEST}:{store.member_id}"


def binding_digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def committed_binding(data_dir: DataDir, store: VaultStore) -> dict[str, str] | None:
    """The settings of the binding the vault's wraps were made under, or None
    when the vault has no binding file.

    A pending binding the database names is made the binding here (a keystore
    command was killed after it committed).  Raises ``AccessDeniedError`` or
    ``StorageError`` for a binding file that is not private or not well formed.
    """
    committed = store.setting(digest_setting(store))
    current = _read(data_dir.binding_path)
    if current is not None and (committed is None or binding_digest(current) == committed):
        return parse_binding(current, str(data_dir.binding_path))
    pending = _read(data_dir.pending_binding_path) if committed is not None else None
    if pending is not None and binding_digest(pending) == committed:
        settings = parse_binding(pending, str(data_dir.pending_binding_path))
        with contextlib.suppress(StorageError, OSError):  # used all the same; retried next open
            _promote_pending(data_dir)
        return settings
    # The database names neither file (it was restored alone, or edited): the
    # binding file decides, and a wrap it does not open is reported at unlock.
    return parse_binding(current, str(data_dir.binding_path)) if current is not None else None


def write_new_binding(data_dir: DataDir, store: VaultStore, keystore: Keystore) -> None:
    """Bind a vault being created (``init``, ``restore``) to ``keystore``; call it
    inside the write that stores the wraps.  Raises ``StorageError``."""
    content = encode_binding(keystore.settings())
    _write(data_dir.binding_path, content)
    store.set_setting(digest_setting(store), binding_digest(content))


def rebind(
    data_dir: DataDir, store: VaultStore, keystore: Keystore, change: Callable[[], None]
) -> None:
    """Bind a live vault to ``keystore``, with ``change`` (its new wraps and audit
    entry) in the same transaction; crash-safe in the order the module says.

    Raises ``ConflictError`` when another command rebound the vault meanwhile,
    ``StorageError``, or what ``change`` raises; then nothing changed.
    """
    content = encode_binding(keystore.settings())
    before = store.setting(digest_setting(store))
    _write(data_dir.pending_binding_path, content)
    try:
        with store.write():
            if store.setting(digest_setting(store)) != before:
                raise ConflictError("the keystore binding changed meanwhile; run the command again")
            change()
            store.set_setting(digest_setting(store), binding_digest(content))
            store.delete_setting(LEGACY_SETTING)
    except BaseException:
        data_dir.pending_binding_path.unlink(missing_ok=True)
        raise
    # Committed: if this rename fails, the next open makes it.
    with contextlib.suppress(StorageError, OSError):
        _promote_pending(data_dir)


def is_bound_to(store: VaultStore, keystore: Keystore) -> bool:
    """Whether the database records ``keystore``'s binding as committed (so a
    failed command must not retire it); True when that cannot be read."""
    try:
        committed = store.setting(digest_setting(store))
    except VaultError:
        return True  # an orphaned key is better than a vault locked out of its keystore
    try:
        return committed == binding_digest(encode_binding(keystore.settings()))
    except VaultError:
        return False  # settings no binding can hold were never written


def adopt_legacy_file_binding(data_dir: DataDir, store: VaultStore) -> dict[str, str] | None:
    """Write the binding file of a file-keystore vault made before it existed.

    Only a key file name (a bare name in the data dir) is taken from the old
    database setting: nothing loadable.  None for a PKCS#11 vault (its admin
    must name the module) or when the setting is missing or unreadable.
    """
    raw = store.setting(LEGACY_SETTING)
    try:
        legacy = parse_json_object(raw) if raw is not None else None
    except ValueError:
        return None
    if not isinstance(legacy, dict) or legacy.get("kind") != "file":
        return None
    name = legacy.get("key_file", KEY_FILE)
    if not isinstance(name, str):
        raise StorageError("the vault's old key file setting is damaged")
    try:
        check_key_file_name(name)
    except VaultError as e:
        raise StorageError("the vault's old key file setting points outside its data dir") from e
    settings = {"kind": "file", "key_file": name}
    # A data dir that cannot be written to still opens; the next open tries again.
    with contextlib.suppress(StorageError):
        _write(data_dir.binding_path, encode_binding(settings))
    return settings


def _read(path: Path) -> bytes | None:
    try:
        return read_private_file(path, MAX_BINDING_BYTES, "keystore binding")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StorageError(f"cannot read the keystore binding {path}: {e.strerror}") from e


def _write(path: Path, content: bytes) -> None:
    try:
        replace_private_file(path, content)
    except OSError as e:
        raise StorageError(f"cannot write the keystore binding {path}: {e.strerror}") from e


def _promote_pending(data_dir: DataDir) -> None:
    try:
        os.replace(data_dir.pending_binding_path, data_dir.binding_path)
    except FileNotFoundError:
        return  # another process opening the vault promoted it first
    except OSError as e:
        raise StorageError(f"cannot finish the keystore binding: {e.strerror}") from e
    sync_directory(data_dir.path)
