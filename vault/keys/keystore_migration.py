"""Moving the GMK's daily-use binding from one keystore to another.

``gwvault keystore migrate`` rebinds the gateway master key to a new keystore
without touching any credential: the GMK stays the same, only its keystore wrap
changes.  The order makes every interruption safe:

1. get every GMK version the vault holds (two while a rotation is under way),
   through the current keystore, or the recovery key when that keystore is
   gone for good;
2. create the new keystore (a new key file, or a token key; a module is
   trusted at its bytes of now) and wrap each version with it;
3. prove the new keystore opens each version again;
4. rebind (``vault.keys.binding_file.rebind``): the new binding file written
   as pending, then one transaction with the new wraps, the binding's digest
   and the audit entry, then the pending binding renamed into place;
5. only then retire the old keystore (destroy a key file or a token key that
   gwvault made).

Before step 4 commits, the vault is untouched and the new keystore is retired;
killed anywhere, the vault opens with the old keystore or the new one.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from agent_keys.errors import ConflictError, InvalidInputError, VaultError
from agent_keys.keystore import Keystore, PinSource
from agent_keys.master_key import MasterKey, master_key_context
from agent_keys.recovery_key import unwrap_with_recovery_key
from agent_keys.secret import Secret
from vault.gateway import Gateway
from vault.keys.binding_file import is_bound_to, rebind
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
        # A cluster member's keystore wraps its member key instead, renewed
        # with every held version wrapped to it (vault.cluster.member_keys).
        wrapped = {
            gmk.version: _wrap_and_prove(
                new, gmk, master_key_context(gateway.gateway_id, gmk.version)
            )
            for gmk in held
            if gateway.member_keys is None
        }
        via = "recovery-key" if recovery_key is not None else "keystore"
        rebind(
            gateway.data_dir,
            gateway.store,
            new,
            lambda: _store_new_wraps(gateway, wrapped, held, old.kind, new, via),
        )
    except BaseException:
        # Never retire a keystore the vault now depends on (a failure after the
        # commit, an interrupt between two lines): only one it does not record.
        if not is_bound_to(gateway.store, new):
            new.retire()
        raise
    gateway.keystore = new
    return MigrationResult(
        old.kind,
        new.kind,
        "recovery key" if recovery_key is not None else "keystore",
        _retire_old(old, new),
    )


def _store_new_wraps(  # noqa: PLR0917 - one private call site
    gateway: Gateway,
    wrapped: dict[int, bytes],
    held: list[MasterKey],
    from_kind: str,
    new: Keystore,
    via: str,
) -> None:
    """The database half of the rebind, inside its transaction."""
    if {gmk.version for gmk in held} != set(held_versions(gateway)):
        raise ConflictError("the master keys changed meanwhile; run the command again")
    if gateway.member_keys is not None:
        gateway.member_keys.rekey(new, held)
    for version, keystore_wrapped in wrapped.items():
        gateway.store.rebind_master_key(version, keystore_wrapped)
    gateway.audit.record(
        "keystore.migrated",
        gateway.gateway_id,
        from_kind=from_kind,
        to_kind=new.kind,
        via=via,
        module_sha256=new.settings().get("module_sha256"),
    )


def held_versions(gateway: Gateway) -> list[int]:
    """Every GMK version the vault holds (two while a rotation is under way)."""
    rows = gateway.store.rows("SELECT version FROM master_keys ORDER BY version", [])
    return [int(row["version"]) for row in rows]


def _held_master_keys(gateway: Gateway, recovery_key: Secret | None) -> list[MasterKey]:
    """Every GMK version the vault holds, through the keystore or the recovery key."""
    versions = held_versions(gateway)
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


def _same_key(old: dict[str, str], new: dict[str, str]) -> bool:
    names = ("kind", "key_file", "token_label", "key_label")
    return all(old.get(name) == new.get(name) for name in names)


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


def _retire_old(old: Keystore, new: Keystore) -> str:
    # The vault no longer needs the old binding; failing to destroy it must not
    # undo a committed migration, so report it instead.
    if _same_key(old.settings(), new.settings()):
        # The recovery key rebound the vault to the very token key it had (an
        # adopted one): destroying it would lock the vault out again.
        return "kept the old key: the new binding uses it"
    try:
        return old.retire()
    except VaultError as e:
        return f"the old binding could not be retired ({e}); remove it by hand"
