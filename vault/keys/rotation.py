"""Rotating the gateway master key: a new GMK version, every data key rewrapped.

design.md "Rotation": a new GMK version rewraps every DEK and never
re-encrypts a secret, resumably.  The work is split so that a crash (kill -9,
power loss) at any instant leaves a vault where every credential opens, and
running ``gwvault keys rotate`` again finishes the job:

1. check the recovery key (nothing is written; a wrong key changes nothing);
2. start, in ONE transaction: add GMK version n+1 (wrapped by the keystore and
   by the recovery KEK), mark version n 'retiring' and n+1 'current', rewrap the
   gateway private keys, the TLS key and the audit key under n+1, audit ``keys.rotation-started``.
   Before it commits the vault is untouched; after it, a 'retiring' row is the
   durable marker that a rotation is under way, and both versions are held;
3. rewrap the data keys in batches, one transaction each: a row moves from n to
   n+1 together with its wrapped DEK, so every row always names the version
   that opens it, and one ``credentials.rewrapped`` entry listing the batch's
   credential ids commits with it;
4. finish, in ONE transaction: once no row references a retiring version,
   delete those versions (the old GMK is destroyed with its last wraps) and
   audit ``keys.rotated``.  A version something still references is kept.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from agent_keys.errors import (
    ConflictError,
    IntegrityError,
    InvalidInputError,
    StorageError,
    VaultError,
)
from agent_keys.keywrap import unwrap_key, wrap_key
from agent_keys.master_key import MasterKey, master_key_context
from agent_keys.recovery_key import RecoveryKdfParams, derive_recovery_kek
from agent_keys.secret import Secret
from vault.audit.trail import audit_key_context
from vault.cluster.lease import Lease, acquire, fenced, release
from vault.format.audit_chain import canonical_json
from vault.format.envelope import dek_context
from vault.gateway import Gateway
from vault.keys.tls import tls_key_context
from vault.notify.sink_config import sink_key_context
from vault.proxy.stored import rewrap_proxy_password
from vault.store.records import MasterKeyRecord

DEFAULT_BATCH_SIZE = 500
ROTATION_LEASE = "keys.rotation"
# Renewed by every batch; a member that stops mid-rotation frees it within this.
ROTATION_LEASE_MS = 60_000
MAX_BATCH_SIZE = 100_000
BATCH_ACTION = "credentials.rewrapped"
"""One entry per batch of rewrapped data keys; ``credential_ids`` lists them."""
# An entry's details stay well under an export line's 64 KiB (vault.audit.export).
_MAX_IDS_CHARS = 32_000
_PLAIN_ID = re.compile(r"[0-9A-Za-z-]*")
# A rewrap pass that keeps finding rows under a retiring version means another
# process (a server opened before the rotation) still writes with the old GMK.
_MAX_PASSES = 3

ProgressReport = Callable[[int, int], None]
"""Called after each committed batch with (credentials on the new version, total)."""


@dataclass(frozen=True)
class RotationResult:
    """What ``keys rotate`` did, for the admin to read."""

    to_version: int
    retired_versions: tuple[int, ...]
    resumed: bool
    rewrapped: int  # data keys this run moved to the new version
    credentials: int
    destroyed_versions: tuple[int, ...]
    kept_versions: dict[int, str]  # version -> what still references it

    @property
    def complete(self) -> bool:
        return not self.kept_versions


class KeyRotation:
    """``gwvault keys rotate``: start or resume a GMK rotation and finish it."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._store = gateway.store
        self._lease: Lease | None = None

    @contextlib.contextmanager
    def _step(self) -> Iterator[None]:
        """One transaction of the rotation; in a cluster, fenced by the rotation
        lease, so a member that paused past its lease while another took the
        rotation over does not interleave its batches with the new holder's."""
        if self._lease is None:
            with self._store.write():
                yield
        else:
            with fenced(self._store, self._lease):
                yield

    def rotate(
        self,
        recovery_key: Secret,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: ProgressReport | None = None,
    ) -> RotationResult:
        """Rotate the GMK (or resume an interrupted rotation) to the end.

        Raises ``InvalidInputError`` for a wrong recovery key (nothing changed),
        ``ConflictError`` when another process keeps writing under the old key,
        ``IntegrityError`` when a stored key does not unwrap.
        """
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise InvalidInputError(f"the batch size must be 1..{MAX_BATCH_SIZE}")
        self._check_recovery_key(recovery_key)
        member = self._gateway.member_id
        if member is not None:  # one rotation at a time in a cluster (vault.cluster.lease)
            self._lease = acquire(self._store, ROTATION_LEASE, member, ROTATION_LEASE_MS)
        try:
            return self._rotate(recovery_key, batch_size, progress)
        finally:
            if self._lease is not None:
                with contextlib.suppress(VaultError):
                    release(self._store, self._lease)
                self._lease = None

    def _rotate(
        self, recovery_key: Secret, batch_size: int, progress: ProgressReport | None
    ) -> RotationResult:
        retiring = self._retiring_versions()
        resumed = bool(retiring)
        if resumed:
            new = self._gateway.master_key_for(self._current_record().version)
            self._gateway.audit.record(
                "keys.rotation-resumed", self._gateway.gateway_id, to_version=new.version
            )
        else:
            new = self._start(recovery_key)
            retiring = self._retiring_versions()
        rewrapped = 0
        for _ in range(_MAX_PASSES):
            rewrapped += self._rewrap_data_keys(new, batch_size, progress)
            result = self._finish(new, tuple(retiring), resumed, rewrapped)
            if result is not None:
                return result
        raise ConflictError(
            "credentials keep being written under the old master key by a process opened"
            " before the rotation; restart gwvault serve, then run gwvault keys rotate again"
        )

    # -- 1. the recovery key ----------------------------------------------------

    def _check_recovery_key(self, recovery_key: Secret) -> None:
        via_recovery = self._gateway.master_key_from_recovery_key(recovery_key)
        via_keystore = self._gateway.master_key_for(via_recovery.version)
        if via_recovery.key != via_keystore.key:
            # Both wraps must hold the same GMK, or one of the two unlock paths
            # is already broken; rotating would carry the breakage forward.
            raise IntegrityError(
                "the keystore and the recovery key unlock different master keys; the vault"
                " is damaged, restore it from a recovery bundle"
            )

    # -- 2. start -----------------------------------------------------------------

    def _start(self, recovery_key: Secret) -> MasterKey:
        gateway = self._gateway
        old = self._current_record()
        new, record = self._new_master_key(recovery_key, old)
        with self._step():
            if self._retiring_versions() or self._current_record().version != old.version:
                raise ConflictError("another rotation started meanwhile; run the command again")
            # Old first: the unique index allows one 'current' at any instant.
            self._store.execute(
                "UPDATE master_keys SET state = 'retiring' WHERE version = ?", [old.version]
            )
            self._store.add_master_key(record)
            members = gateway.wrap_for_members(new)
            keys = gateway.member_keys
            if keys is not None and keys.unwrap(new.version) != new.key:
                raise IntegrityError("the new master key did not unwrap again; nothing changed")
            key_rows = self._rewrap_key_rows(new)
            gateway.audit.record(
                "keys.rotation-started",
                gateway.gateway_id,
                from_version=old.version,
                to_version=new.version,
                members_wrapped=members,
                credentials=self._store.count_credentials(),
                key_rows_rewrapped=key_rows,
            )
        # The cached current GMK is now the retiring one; the next use re-reads it.
        with contextlib.suppress(AttributeError):
            del gateway.master_key
        return new

    def _new_master_key(
        self, recovery_key: Secret, old: MasterKeyRecord
    ) -> tuple[MasterKey, MasterKeyRecord]:
        """GMK version n+1 wrapped by the keystore and the recovery KEK (nothing stored)."""
        gateway, random = self._gateway, self._gateway.context.random
        # The new version reuses the current version's Argon2id salt and cost:
        # the recovery key is unchanged, so a fresh salt would add no secrecy,
        # and one KEK then opens every held version (restore and keystore
        # migration derive it once).  Changing the recovery key is its own step.
        params = RecoveryKdfParams(old.recovery_salt, old.recovery_opslimit, old.recovery_memlimit)
        kek = derive_recovery_kek(recovery_key, params)
        new = MasterKey.generate(self._highest_version() + 1, random)
        context = master_key_context(gateway.gateway_id, new.version)
        keystore_wrapped = gateway.wrap_for_keystore(new)
        recovery_wrapped = wrap_key(kek, new.key, context, random)
        # Prove both unlock paths give the new GMK back before anything depends
        # on it (a cluster member's path is proved once its wraps are written).
        if (
            keystore_wrapped
            and gateway.keystore.unwrap_master_key(keystore_wrapped, context) != new.key
        ) or unwrap_key(kek, recovery_wrapped, context) != new.key:
            raise IntegrityError("the new master key did not unwrap again; nothing changed")
        record = MasterKeyRecord(
            version=new.version,
            keystore_wrapped=keystore_wrapped,
            recovery_wrapped=recovery_wrapped,
            recovery_salt=params.salt,
            recovery_opslimit=params.opslimit,
            recovery_memlimit=params.memlimit,
            state="current",
            created_at=gateway.context.now_iso(),
        )
        return new, record

    def _rewrap_key_rows(self, new: MasterKey) -> int:
        """Rewrap the gateway private keys, the TLS key and the audit key still
        under an older version (inside the caller's write); returns how many
        rows moved."""
        gateway, random = self._gateway, self._gateway.context.random
        moved = 0
        for record in self._store.gateway_keys():
            if record.gmk_version == new.version:
                continue
            context = record.wrap_context(gateway.gateway_id)
            key = gateway.master_key_for(record.gmk_version).unwrap(
                record.wrapped_private_key, context
            )
            self._store.execute(
                "UPDATE gateway_keys SET wrapped_private_key = ?, gmk_version = ?"
                " WHERE version = ?",
                [new.wrap(key, context, random), new.version, record.version],
            )
            moved += 1
        # Single-row keys: the TLS keys (one per cluster member, keyed by its
        # id; a single machine's is row 1) and the audit key (whose context
        # names the first entry it MACs).
        contexts: dict[str, Callable[[dict[str, Any]], bytes]] = {
            "tls_identity": lambda row: tls_key_context(
                gateway.gateway_id, row["id"] if isinstance(row["id"], str) else None
            ),
            "audit_key": lambda row: audit_key_context(gateway.gateway_id, row["keyed_from"]),
            # A sink without a secret has none to rewrap (its gmk_version is NULL).
            "notify_sinks": lambda row: sink_key_context(
                gateway.gateway_id, row["id"], row["name"]
            ),
        }
        for table, context_of in contexts.items():
            for row in self._store.rows(
                f"SELECT * FROM {table} WHERE gmk_version != ?",  # noqa: S608 - fixed table names
                [new.version],
            ):
                context = context_of(row)
                key = gateway.master_key_for(row["gmk_version"]).unwrap(row["wrapped_key"], context)
                self._store.execute(
                    f"UPDATE {table} SET wrapped_key = ?, gmk_version = ? WHERE id = ?",  # noqa: S608 - fixed table names
                    [new.wrap(key, context, random), new.version, row["id"]],
                )
                moved += 1
        # The proxy's password sits wrapped inside a sealed setting, not a key row.
        return moved + rewrap_proxy_password(gateway, new)

    # -- 3. data keys, batch by batch ---------------------------------------------

    def _rewrap_data_keys(
        self, new: MasterKey, batch_size: int, progress: ProgressReport | None
    ) -> int:
        """Move every credential's DEK to ``new``; one transaction per batch."""
        total = self._store.count_credentials()
        done = total - self._count_not_on(new.version)
        rewrapped = 0
        # Keyset paging on the id (the primary key, in both engines): rows
        # already moved are never scanned again.  A row written meanwhile is
        # written under the new GMK; the finish step re-checks inside its
        # transaction for any that is not.
        after_id = ""
        while True:
            with self._step():
                rows = self._store.rows(
                    "SELECT id, name, gmk_version, wrapped_dek FROM credentials"
                    " WHERE gmk_version != ? AND id > ? ORDER BY id LIMIT ?",
                    [new.version, after_id, batch_size],
                )
                for row in rows:
                    self._rewrap_data_key(new, row)
                self._record_batch(new, rows)
            if not rows:
                return rewrapped
            after_id = rows[-1]["id"]
            rewrapped += len(rows)
            done += len(rows)
            if progress is not None:
                progress(min(done, total), total)

    def _rewrap_data_key(self, new: MasterKey, row: dict[str, Any]) -> None:
        context = dek_context(self._gateway.gateway_id, row["id"])
        dek = self._gateway.master_key_for(row["gmk_version"]).unwrap(row["wrapped_dek"], context)
        # Only the key wrap and its version change; the ciphertext is untouched.
        wrapped = new.wrap(dek, context, self._gateway.context.random)
        # The id and version as read.
        self._store.execute(
            "UPDATE credentials SET gmk_version = ?, wrapped_dek = ?"
            " WHERE id = ? AND gmk_version = ?",
            [new.version, wrapped, row["id"], row["gmk_version"]],
        )

    def _record_batch(self, new: MasterKey, rows: list[dict[str, Any]]) -> None:
        """Audit a batch inside its transaction: one entry naming every credential id.

        One entry per credential cost ~80% of a rotation (issue 15); the batch
        entry still names each id and the versions, and commits with the rows it
        describes.  A batch too large for one export line is split in chunks.
        """
        from_versions = ",".join(str(v) for v in sorted({int(r["gmk_version"]) for r in rows}))
        for ids in _id_chunks([str(row["id"]) for row in rows]):
            self._gateway.audit.record(
                BATCH_ACTION,
                self._gateway.gateway_id,
                from_versions=from_versions,
                to_version=new.version,
                count=len(ids),
                credential_ids=",".join(ids),
            )

    # -- 4. finish ----------------------------------------------------------------

    def _finish(
        self, new: MasterKey, retired: tuple[int, ...], resumed: bool, rewrapped: int
    ) -> RotationResult | None:
        """Destroy the retiring versions nothing uses; ``None`` if credentials
        under a retiring version appeared meanwhile (another pass is needed)."""
        with self._step():
            if self._count_not_on(new.version):
                return None
            self._rewrap_key_rows(new)  # a key row written meanwhile by an older process
            retiring = self._retiring_versions()
            kept = self._still_referenced(retiring)
            destroyed = tuple(v for v in retiring if v not in kept)
            for version in destroyed:
                # A cluster's member wraps of the version go with it (crypto-shred).
                self._store.execute("DELETE FROM member_wraps WHERE gmk_version = ?", [version])
                self._store.execute("DELETE FROM master_keys WHERE version = ?", [version])
            result = RotationResult(
                to_version=new.version,
                retired_versions=retired,
                resumed=resumed,
                rewrapped=rewrapped,
                credentials=self._store.count_credentials(),
                destroyed_versions=destroyed,
                kept_versions=kept,
            )
            self._gateway.audit.record(
                "keys.rotated" if result.complete else "keys.rotation-incomplete",
                self._gateway.gateway_id,
                "ok" if result.complete else "failed",
                to_version=new.version,
                destroyed_versions=",".join(map(str, destroyed)),
                kept_versions=",".join(map(str, kept)),
                credentials=result.credentials,
                rewrapped_this_run=rewrapped,
                resumed=resumed,
            )
        self._store.engine.drop_freed_pages()
        return result

    def _still_referenced(self, versions: list[int]) -> dict[int, str]:
        """Retiring versions some row still names, with the tables that name them.

        Found through the schema's foreign keys to ``master_keys``, so a table
        another feature adds later is checked too (and its rows keep their GMK).
        """
        references = self._store.engine.foreign_keys_to("master_keys")
        kept: dict[int, str] = {}
        for version in versions:
            users = [
                table
                for table, column in references
                # Table and column names come from the schema itself, not from input.
                if self._store.rows(
                    f'SELECT 1 FROM "{table}" WHERE "{column}" = ? LIMIT 1',  # noqa: S608
                    [version],
                )
            ]
            if users:
                kept[version] = ", ".join(sorted(users))
        return kept

    # -- queries --------------------------------------------------------------------

    def _current_record(self) -> MasterKeyRecord:
        record = self._store.current_master_key()
        if record is None:
            raise StorageError("the vault has no current master key; restore from a bundle")
        return record

    def _retiring_versions(self) -> list[int]:
        rows = self._store.rows(
            "SELECT version FROM master_keys WHERE state = 'retiring' ORDER BY version", []
        )
        return [int(row["version"]) for row in rows]

    def _highest_version(self) -> int:
        return int(self._store.rows("SELECT max(version) AS v FROM master_keys", [])[0]["v"])

    def _count_not_on(self, version: int) -> int:
        rows = self._store.rows(
            "SELECT count(*) AS n FROM credentials WHERE gmk_version != ?", [version]
        )
        return int(rows[0]["n"])


def _id_chunks(ids: list[str]) -> list[list[str]]:
    """``ids`` in order, cut so each chunk's comma-joined JSON text stays under
    ``_MAX_IDS_CHARS`` (an id is a UUID; a stranger one is counted as escaped)."""
    chunks: list[list[str]] = []
    size = 0
    for credential_id in ids:
        # Its escaped text and a comma (a UUID needs no escaping: the cheap test first).
        plain = _PLAIN_ID.fullmatch(credential_id) is not None
        length = len(credential_id) + 1 if plain else len(canonical_json(credential_id)) - 1
        if not chunks or (chunks[-1] and size + length > _MAX_IDS_CHARS):
            chunks.append([])
            size = 0
        chunks[-1].append(credential_id)
        size += length
    return chunks
