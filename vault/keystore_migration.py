"""Moving the GMK's daily-use binding from one keystore to another.

``gwvault keystore migrate`` rebinds the gateway master key to a new keystore
without touching any credential: the GMK stays the same, only its keystore wrap
changes.  The order makes every interruption safe:

1. get the GMK (through the current keystore, or the recovery key when that
   keystore is gone for good);
2. create the new binding and wrap the GMK with it;
3. prove the new binding opens the GMK again;
4. in one transaction: store the new wrap, the new keystore settings and the
   audit entry;
5. only then retire the old binding (destroy a key file or a token key that
   gwvault made).

Before step 4 commits, the vault is untouched and the new binding is removed.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from agent_keys.errors import InvalidInputError, VaultError
from agent_keys.keystore import Keystore, PinSource
from agent_keys.master_key import MasterKey, master_key_context
from agent_keys.secret import Secret
from vault.gateway import Gateway
from vault.keystore_binding import KeystoreSpec, create_keystore


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
    gmk = (
        gateway.master_key_from_recovery_key(recovery_key)
        if recovery_key is not None
        else gateway.master_key
    )
    context = master_key_context(gateway.gateway_id, gmk.version)
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
        wrapped = _wrap_and_prove(new, gmk, context)
        with gateway.store.write():
            gateway.store.rebind_master_key(gmk.version, wrapped)
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
