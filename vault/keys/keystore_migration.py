"""Moving the GMK's daily-use binding from one keystore to another.

``gwvault keystore migrate`` rebinds the gateway master key to a new keystore
without touching any credential: the GMK stays the same, only its keystore wrap
changes.  The order makes every interruption safe:

1. get every GMK version the vault holds (two while a rotation is under way),
   through the current keystore, or the recovery key when that keystore is
   gone for good;
2. create the new binding and wrap each version with it;
3. prove the new binding opens each version again;
4. in one transaction: store the new wraps, the new keystore settings and the
   audit entry;
5. only then retire the old binding (destroy a key file or a token key that
   gwvault made).

Before step 4 commits, the vault is untouched and the new binding is removed.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from agent_keys.errors import ConflictError, InvalidInputError, VaultError
from agent_keys.keystore import Keystore, PinSource
from agent_keys.master_key import MasterKey, master_key_context
from agent_keys.recovery_key import unwrap_with_recovery_key
from agent_keys.secret import Secret
from vault.gateway import Gateway
from vault.keys.keystore_binding import KeystoreSpec, create_keystore


@dataclass(frozen=True)
class MigrationResult:
    """What ``keystore migrate`` did, for the admin to read."""

    from_kind: str
    to_kind: str
    unlocked_with: str
    old_binding: str


def migrate_keystore(
    gateway: Gateway, target: KeystoreSpec, pin: PinSource, recovery_key: Secret | None = None
) -> MigrationResult:
    """Rebind the vault's GMK to the keystore ``target`` describes.

    With ``recovery_key`` the GMK is unwrapped through the recovery wrap (the
    old keystore is lost); otherwise through the current keystore.
    """
    old = gateway.keystore
    if recovery_key is None:
        # With the recovery key the old binding is lost, and a new one of the
        # same kind (a new key file, a new token key) is exactly the repair.
        _refuse_same_binding(old, target)
    held = _held_master_keys(gateway, recovery_key)
    gateway.adopt_master_keys({gmk.version: gmk for gmk in held})  # the old keystore may be gone
    new = create_keystore(
        target,
        gateway.data_dir,
        gateway.gateway_id,
        gateway.context.random,
        pin,
        # A fresh name: a key file left by an interrupted earlier migration is
        # never reused or overwritten.
        key_file=f"keystore-{secrets.token_hex(4)}.key",
    )
    try:
        # Every held version (mid-rotation there are two): a version left wrapped
        # only by the old keystore would be lost when that keystore is retired.
        wrapped = {
            gmk.version: _wrap_and_prove(
                new, gmk, master_key_context(gateway.gateway_id, gmk.version)
            )
            for gmk in held
        }
        with gateway.store.write():
            if set(wrapped) != set(_held_versions(gateway)):
                raise ConflictError("the master keys changed meanwhile; run the command again")
            for version, keystore_wrapped in wrapped.items():
                gateway.store.rebind_master_key(version, keystore_wrapped)
            gateway.store.set_setting("keystore", json.dumps(new.settings()))
            gateway.audit.record(
                "keystore.migrated",
                gateway.gateway_id,
                from_kind=old.kind,
                to_kind=new.kind,
                via="recovery-key" if recovery_key is not None else "keystore",
            )
    except BaseException:
        new.retire()
        raise
    gateway.keystore = new
    return MigrationResult(
        old.kind,
        new.kind,
        "recovery key" if recovery_key is not None else "keystore",
        _retire_old(old),
    )


def _held_versions(gateway: Gateway) -> list[int]:
    rows = gateway.store.rows("SELECT version FROM master_keys ORDER BY version", [])
    return [int(row["version"]) for row in rows]


def _held_master_keys(gateway: Gateway, recovery_key: Secret | None) -> list[MasterKey]:
    """Every GMK version the vault holds, through the keystore or the recovery key."""
    versions = _held_versions(gateway)
    if recovery_key is None:
        return [gateway.master_key_for(version) for version in versions]
    current = gateway.master_key_from_recovery_key(recovery_key)  # checks the key, audited
    others = [
        record.recovery_wrap()
        for version in versions
        if version != current.version and (record := gateway.store.master_key(version))
    ]
    older = unwrap_with_recovery_key(gateway.gateway_id, others, recovery_key) if others else {}
    return [current, *older.values()]


def _wrap_and_prove(keystore: Keystore, gmk: MasterKey, context: bytes) -> bytes:
    wrapped = keystore.wrap_master_key(gmk.key, context)
    if keystore.unwrap_master_key(wrapped, context) != gmk.key:
        raise InvalidInputError(
            "the new keystore did not give the master key back; nothing changed"
        )
    return wrapped


def _refuse_same_binding(old: Keystore, target: KeystoreSpec) -> None:
    settings = old.settings()
    same_pkcs11_key = (
        target.kind == "pkcs11"
        and settings.get("module") == target.pkcs11_module
        and settings.get("token_label") == target.token_label
        and (target.key_label is None or settings.get("key_label") == target.key_label)
    )
    if (target.kind == "file" and old.kind == "file") or same_pkcs11_key:
        raise InvalidInputError(f"the vault is already bound to this {target.kind} keystore")


def _retire_old(old: Keystore) -> str:
    # The vault no longer needs the old binding; failing to destroy it must not
    # undo a committed migration, so report it instead.
    try:
        return old.retire()
    except VaultError as e:
        return f"the old binding could not be retired ({e}); remove it by hand"
