"""Moving a gateway: export a recovery bundle, restore it on another machine.

``export_bundle`` checks the recovery key first, so no bundle is ever written
that its owner cannot open.  ``restore`` opens and authenticates the whole
bundle in memory, then writes the vault into an empty data dir, binds every
GMK version to the new machine's keystore, raises the gateway epoch (design.md:
a node holding an older epoch must stop serving), drops web sessions (they do
not move), records the restore, and verifies every credential.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from agent_keys.keystore import PinSource
from agent_keys.master_key import MasterKey, master_key_context
from agent_keys.secret import Secret
from vault.cluster.founding import forget_members
from vault.context import RequestContext
from vault.credentials import CredentialService, VerifyReport
from vault.data_dir import DataDir
from vault.format.recovery_bundle import FORMAT_VERSION, open_bundle, seal_bundle, wrap_entry
from vault.gateway import Gateway
from vault.keys.binding_file import LEGACY_SETTING, write_new_binding
from vault.keys.keystore_binding import KeystoreSpec, create_keystore
from vault.keys.recovery import RecoveryService
from vault.keys.tls import generate_for, store_tls_identity
from vault.store.vault_store import VaultStore


def export_bundle(gateway: Gateway, recovery_key: Secret) -> bytes:
    """The bundle bytes for this vault; refuses a recovery key that does not open it."""
    recovery = RecoveryService(gateway)
    keys = recovery.open(recovery_key)
    current = gateway.store.current_master_key()
    assert current is not None  # noqa: S101 - open() found the GMK versions
    header: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "gateway_id": gateway.gateway_id,
        "name": gateway.name,
        "epoch": gateway.epoch,
        "created_at": gateway.context.now_iso(),
        "current_gmk_version": current.version,
        "recovery": [wrap_entry(wrap) for wrap in recovery.wraps()],
    }
    scratch = gateway.data_dir.path / f".bundle-{secrets.token_hex(8)}.db"
    database = gateway.store.snapshot(scratch)
    bundle = seal_bundle(header, keys[current.version], database, gateway.context.random)
    gateway.audit.record(
        "recovery.exported",
        gateway.gateway_id,
        bytes=len(bundle),
        credentials=gateway.store.count_credentials(),
    )
    return bundle


def restore_vault(
    path: Path,
    bundle: bytes,
    recovery_key: Secret,
    context: RequestContext,
    *,
    keystore: KeystoreSpec,
    pin: PinSource,
) -> tuple[Gateway, VerifyReport]:
    """Restore a bundle into the empty data dir ``path``; the vault opens as before."""
    opened = open_bundle(bundle, recovery_key)  # everything authenticated before any write
    data_dir = DataDir.create(path)
    try:
        store = VaultStore.create_from_snapshot(data_dir.db_path, opened.database)
        try:
            _rebind(
                store,
                data_dir,
                master_keys=opened.master_keys,
                gateway_id=opened.gateway_id,
                context=context,
                spec=keystore,
                pin=pin,
            )
        finally:
            store.close()
        data_dir.finish_creation()
    except BaseException:
        data_dir.remove_new_files()
        raise
    # Complete from here: a failure to open it is reported, never cleaned away.
    gateway = Gateway.open(path, context, pin)
    return gateway, CredentialService(gateway).verify()


def _rebind(
    store: VaultStore,
    data_dir: DataDir,
    *,
    master_keys: dict[int, MasterKey],
    gateway_id: str,
    context: RequestContext,
    spec: KeystoreSpec,
    pin: PinSource,
) -> None:
    new_keystore = create_keystore(spec, data_dir, gateway_id, context.random, pin)
    try:
        with store.write():
            gateway = Gateway.with_master_keys(data_dir, store, new_keystore, context, master_keys)
            for version, gmk in master_keys.items():
                wrapped = new_keystore.wrap_master_key(
                    gmk.key, master_key_context(gateway_id, version)
                )
                store.rebind_master_key(version, wrapped)
            epoch = int(store.setting("epoch") or "1") + 1
            store.set_setting("epoch", str(epoch))
            # The old machine's binding never applies here (its module, its key file).
            store.delete_setting(LEGACY_SETTING)
            # A cluster's bundle: its members belong to the old epoch, and this
            # machine serves with a TLS identity of its own.
            forget_members(gateway)
            if not store.rows("SELECT 1 FROM tls_identity", []):
                gmk = gateway.master_key
                store_tls_identity(gateway, gmk, generate_for(gateway, gmk), "generated")
            write_new_binding(data_dir, store, new_keystore)
            store.execute("DELETE FROM web_sessions", [])
            gateway.audit.record(
                "gateway.restored",
                gateway_id,
                epoch=epoch,
                keystore=new_keystore.kind,
                module_sha256=new_keystore.settings().get("module_sha256"),
            )
    except BaseException:
        new_keystore.retire()
        raise
