"""What an admin does to a cluster's members: join one, list, disable, enable, remove.

Every change is one transaction with its audit entry, decided inside it (the
member row is read, its seal checked and changed in the same write).  The last
enabled member cannot be disabled or removed: a cluster with none left could
only be brought back with the recovery key on a new machine.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from agent_keys.errors import (
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    StorageError,
)
from agent_keys.keystore import PinSource
from agent_keys.master_key import MasterKey
from agent_keys.recovery_key import unwrap_with_recovery_key
from agent_keys.secret import Secret
from vault.cluster.enrolment import enroll_member, member_target, new_member_id
from vault.cluster.member_keys import MemberRecord, member_rows
from vault.context import RequestContext
from vault.data_dir import DataDir
from vault.gateway import FILE_KEYSTORE, Gateway
from vault.keys.binding_file import BINDING_DIGEST, write_new_binding
from vault.keys.keystore_binding import KeystoreSpec, create_keystore, no_pin
from vault.keys.tls import generate_for, store_tls_identity
from vault.store.locator import (
    ClusterMembership,
    PostgresLocation,
    with_password_file,
    write_membership,
)
from vault.store.vault_store import VaultStore


def join_cluster(
    path: Path,
    store_location: PostgresLocation,
    recovery_key: Secret,
    context: RequestContext,
    *,
    name: str | None = None,
    keystore: KeystoreSpec = FILE_KEYSTORE,
    pin: PinSource = no_pin,
    store_password: Secret | None = None,
) -> Gateway:
    """Make ``path`` a new member of the cluster whose store is ``store_location``.

    The recovery key opens every held GMK version; this machine's keystore
    wraps its new member key, and each version is wrapped to it.  Refuses a
    wrong recovery key (recorded) before writing anything to the store; on
    any failure the data dir's new files are removed.
    """
    data_dir = DataDir.create(path)
    gateway: Gateway | None = None
    created_keystore = None
    try:
        location = with_password_file(store_location, data_dir.path, store_password)
        member_id = new_member_id(context.random)
        store = VaultStore.open_shared(location, member_id)
        try:
            gateway_id = store.setting("gateway_id")
            if gateway_id is None:
                raise StorageError(f"{store.location} holds no initialised vault")
            master_keys = _master_keys_by_recovery_key(store, gateway_id, recovery_key)
            created_keystore = create_keystore(keystore, data_dir, gateway_id, context.random, pin)
            gateway = Gateway.with_master_keys(
                data_dir, store, created_keystore, context, master_keys
            )
        except BaseException:
            store.close()
            raise
        with store.write():
            epoch = gateway.epoch
            write_new_binding(data_dir, store, created_keystore)
            enroll_member(gateway, list(master_keys.values()), name, epoch)
            gmk = gateway.master_key
            store_tls_identity(gateway, gmk, generate_for(gateway, gmk), "generated")
            write_membership(data_dir.path, ClusterMembership(location, member_id, epoch))
        data_dir.finish_creation()
    except BaseException:
        if gateway is not None:
            gateway.close()
        if created_keystore is not None:
            created_keystore.retire()
        data_dir.remove_new_files()
        raise
    return gateway


def _master_keys_by_recovery_key(
    store: VaultStore, gateway_id: str, recovery_key: Secret
) -> dict[int, MasterKey]:
    records = [store.master_key(v) for v in _versions(store)]
    wraps = [record.recovery_wrap() for record in records if record is not None]
    try:
        return unwrap_with_recovery_key(gateway_id, wraps, recovery_key)
    except IntegrityError as e:
        raise InvalidInputError("that recovery key does not open this cluster's vault") from e


def _versions(store: VaultStore) -> list[int]:
    return [int(row["version"]) for row in store.rows("SELECT version FROM master_keys", [])]


class ClusterMembers:
    """The members of the cluster ``gateway`` belongs to, as its admin sees them."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._store = gateway.store

    def list(self) -> list[dict[str, Any]]:
        """Every member, its seal checked, with when it was last seen (ms ago)."""
        self._require_cluster()
        now = self._store.engine.database_time_ms()
        listed = []
        for row in member_rows(self._store):
            self._gateway.rows.check("members", row)
            record = MemberRecord.from_row(row)
            facts = {k: v for k, v in asdict(record).items() if k not in _KEY_COLUMNS}
            facts["this_member"] = record.id == self._gateway.member_id
            facts["last_seen_s_ago"] = (
                round((now - record.last_seen_ms) / 1000, 1) if record.last_seen_ms else None
            )
            listed.append(facts)
        return listed

    def set_state(self, node: str, state: str) -> MemberRecord:
        """Disable or enable ``node`` (a name or id); its server stops (or may
        serve again) at its next request."""
        store = self._store
        with store.write():
            record = self._find(node)
            if record.state == state:
                return record
            if state == "disabled":
                self._keep_one_enabled(record)
            store.execute("UPDATE members SET state = ? WHERE id = ?", [state, record.id])
            self._gateway.rows.reseal("members", record.id)
            action = "cluster.member-disabled" if state == "disabled" else "cluster.member-enabled"
            self._gateway.audit.record(
                action, member_target(record.id), member_id=record.id, name=record.name,
                state=state,
            )  # fmt: skip
        return self._find(node)

    def remove(self, node: str) -> MemberRecord:
        """Delete ``node``'s row, its GMK wraps, TLS identity and binding digest.
        Its copied key file then opens no wrap; ``--rotate`` (the caller, with
        the recovery key) makes the GMK it may have kept worthless too."""
        store = self._store
        with store.write():
            record = self._find(node)
            self._keep_one_enabled(record)
            store.execute("DELETE FROM member_wraps WHERE member_id = ?", [record.id])
            store.execute("DELETE FROM tls_identity WHERE id = ?", [record.id])
            store.delete_setting(f"{BINDING_DIGEST}:{record.id}")
            store.execute("DELETE FROM members WHERE id = ?", [record.id])
            self._gateway.audit.record(
                "cluster.member-removed", member_target(record.id), member_id=record.id,
                name=record.name, state="removed",
            )  # fmt: skip
        return record

    def _find(self, node: str) -> MemberRecord:
        self._require_cluster()
        rows = member_rows(self._store, "WHERE name = ? OR id = ?", [node, node])
        if not rows:
            raise NotFoundError(f"no member named {node!r}; see: gwvault cluster members")
        self._gateway.rows.check("members", rows[0])
        return MemberRecord.from_row(rows[0])

    def _keep_one_enabled(self, leaving: MemberRecord) -> None:
        others = self._store.rows(
            "SELECT count(*) AS n FROM members WHERE state = 'enabled' AND id <> ?", [leaving.id]
        )
        if not int(others[0]["n"]):
            raise ConflictError(
                f"{leaving.name} is the last enabled member; join or enable another first"
            )

    def _require_cluster(self) -> None:
        if self._gateway.member_id is None:
            raise InvalidInputError(
                "this gateway is a single machine (SQLite); move it to a shared store first:"
                " gwvault store migrate --to postgresql://..."
            )


_KEY_COLUMNS = ("public_key", "wrapped_private_key")
