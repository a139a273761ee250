"""``gwvault store migrate``: a single machine's vault moves into a shared PostgreSQL.

The vault's SQLite file is copied into an empty PostgreSQL database
(``vault.store.copying``), checked there, and only then is the data dir
switched over to it; until the switch, this machine goes on with its file.

1. The target must be empty, or hold this same gateway's vault from an
   earlier run that was interrupted: a database holding anything else is
   refused before a row is written.  The schema and the vault's settings
   (its gateway id) are made in one transaction, so a vault schema in the
   target always says whose it is.
2. Every table is copied from one consistent view of the file, held as a
   write for the whole migration: no change made on this machine meanwhile
   can be left behind in the file.  Run again after an interruption, the
   copy goes on where it stopped.
3. Checked through the target before anything uses it: every table holds the
   file's rows exactly, the audit trail ends at the file's last entry and
   verifies (chain, MACs, signed checkpoints), and every credential opens
   with the vault's keys.  The secrets opened are never shown.
4. ``store.migrated`` is recorded in the target's trail, directly after the
   file's last entry: a later run that finds it there knows the copy is
   complete and checked, and goes on to the switch.
5. The switch: this machine becomes the first member of a gateway cluster on
   the target, and its data dir names the target (``cluster.json``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agent_keys.errors import ConflictError, IntegrityError, StorageError
from agent_keys.keystore import PinSource
from agent_keys.secret import Secret
from agent_keys.tls_identity import TlsIdentity
from vault.audit.log import AuditLog
from vault.audit.trail import DetailValue
from vault.cluster.enrolment import new_member_id
from vault.cluster.founding import found_cluster
from vault.context import RequestContext
from vault.credentials import CredentialService
from vault.data_dir import DataDir
from vault.gateway import Gateway
from vault.keys.binding_file import BINDING_DIGEST, write_new_binding
from vault.keys.keystore_binding import open_bound_keystore
from vault.keys.tls import store_tls_identity, tls_key_context
from vault.store.catalog import table_names
from vault.store.copying import copied_tables, copy_tables, schema_statements, table_digest
from vault.store.engine import StoreEngine
from vault.store.locator import (
    STORE_PASSWORD_FILE,
    ClusterMembership,
    PostgresLocation,
    read_membership,
    with_password_file,
    write_membership,
)
from vault.store.postgres_engine import PostgresEngine
from vault.store.vault_store import VaultStore

MIGRATED_ACTION = "store.migrated"
TargetState = Literal["empty", "partial", "copied"]
Progress = Callable[[str], None]
_AuditTail = tuple[int, bytes]


@dataclass(frozen=True)
class VerifiedCopy:
    """What the checks of a copy found: every credential opened, the trail verified."""

    credentials: int
    audit_entries: int
    audit_summary: str


@dataclass(frozen=True)
class MigrationReport:
    """What one run of ``migrate`` did; ``copied`` is empty when an earlier run had."""

    target: str
    copied: dict[str, int]
    verified: VerifiedCopy
    resumed: bool


def migrate_to_shared_store(
    path: Path,
    location: PostgresLocation,
    password: Secret | None,
    *,
    context: RequestContext,
    pin: PinSource,
    progress: Progress = lambda line: None,
) -> MigrationReport:
    """Move the vault of the data dir ``path`` into the PostgreSQL database at
    ``location`` (empty, or holding an interrupted migration of this vault),
    check it there and switch the data dir over to it.

    ``password`` (if any) goes to the data dir's libpq password file.  Raises
    ``ConflictError`` (the target holds something else, or the data dir already
    uses a shared store), ``IntegrityError`` (the copy does not verify: the
    data dir stays on its file), ``StorageError``.
    """
    data_dir = DataDir.open(path)
    membership = read_membership(path)
    if membership is not None:
        raise ConflictError(
            f"{path} already uses the shared store {membership.store.display}; there is"
            " nothing to migrate"
        )
    password_file = path / STORE_PASSWORD_FILE
    wrote_password = password is not None and not password_file.exists()
    try:
        located = with_password_file(location, path, password)
        source = VaultStore.open(data_dir.db_path)
        try:
            migration = _Migration(data_dir, source, located, context, pin, progress)
            try:
                # A write, held to the end: no other process on this machine
                # changes the file between the copy and the switch (a server
                # waits, then fails its writes; stop it first).  Nothing is
                # written to the file.
                with source.write():
                    return migration.run()
            finally:
                migration.target.close()
        finally:
            source.close()
    except BaseException:
        if wrote_password:  # this run's, and nothing uses it: leave the data dir as it was
            password_file.unlink(missing_ok=True)
        raise


class _Migration:
    """One run of ``migrate``: the file's store, the target's, and who asks."""

    def __init__(  # noqa: PLR0917 - the data dir, both ends, and the caller's context
        self,
        data_dir: DataDir,
        source: VaultStore,
        location: PostgresLocation,
        context: RequestContext,
        pin: PinSource,
        progress: Progress,
    ) -> None:
        self.data_dir, self.source, self.location = data_dir, source, location
        self.context, self.pin, self.progress = context, pin, progress
        self.engine = PostgresEngine(location.conninfo, location.display)
        self.target = VaultStore(self.engine)

    def run(self) -> MigrationReport:
        tail = self.source.audit_tail()
        if self.source.setting("gateway_id") is None or tail is None:
            raise StorageError(
                f"{self.data_dir.db_path} holds no initialised vault; nothing to migrate"
            )
        state = target_state(self.engine, self.source)
        copied = self._copy() if state != "copied" else {}
        gateway = self._opened_copy()
        verified = verify_copy(gateway, tail if state != "copied" else None)
        self.progress(
            f"verified in {self.location.display}: {verified.credentials} credentials open;"
            f" audit trail {verified.audit_summary}"
        )
        if state != "copied":
            self._record(gateway, tail, copied, verified)
        switch_data_dir(self.data_dir, self.location, gateway)
        return MigrationReport(self.location.display, copied, verified, resumed=state != "empty")

    def _copy(self) -> dict[str, int]:
        source, engine = self.source.engine, self.engine
        if not table_names(engine):
            self.progress(f"making the vault schema in {self.location.display}")
            engine.create_schema(
                schema_statements(engine.kind),
                None,  # the file's own schema_version comes with its settings
                fill=lambda: copy_tables(source, engine, ["settings"]),
            )
        copied = copy_tables(source, engine)
        self.progress(f"copied {sum(copied.values())} rows of {len(copied)} tables")
        check_same_rows(source, engine)
        return copied

    def _opened_copy(self) -> Gateway:
        """The vault as its copy holds it, unlocked by this machine's keystore
        (the binding file here names it; the copied settings hold its digest)."""
        random = self.context.random
        keystore = open_bound_keystore(self.data_dir, self.target, random, self.pin)
        return Gateway(self.data_dir, self.target, keystore, self.context)

    def _record(
        self, gateway: Gateway, tail: _AuditTail, copied: dict[str, int], verified: VerifiedCopy
    ) -> None:
        with self.target.write():
            if self.target.audit_tail() != tail:
                raise ConflictError(
                    f"{self.location.display} was written during the migration; empty it and"
                    " run migrate again"
                )
            details: dict[str, DetailValue] = {
                "from": str(self.data_dir.db_path.resolve()),
                "to": self.location.display,  # never a password: the URL holds none
                "tables": len(copied),
                "rows": sum(copied.values()),
                "credentials": verified.credentials,
                "audit_entries": verified.audit_entries,
            }
            gateway.audit.record(MIGRATED_ACTION, gateway.gateway_id, "ok", **details)


def target_state(engine: StoreEngine, source: VaultStore) -> TargetState:
    """What the target holds: nothing, part or all of a copy of the vault in
    ``source`` (``copied``: ``store.migrated`` follows the file's last entry there).

    ``ConflictError`` for anything else: tables of something other than a
    vault, another gateway's vault, or this gateway's cluster already (a
    member the file does not know).
    """
    names = table_names(engine)
    if not names:
        return "empty"
    if not {"settings", "audit_events", "members"} <= names:
        raise ConflictError(
            f"{engine.location} is not empty ({len(names)} tables that are not a gwvault vault);"
            " migrate moves the vault into an empty database only: create one (createdb NAME)"
        )
    theirs = engine.tuples("SELECT value FROM settings WHERE key = 'gateway_id'", [])
    if not theirs or theirs[0][0] != source.setting("gateway_id"):
        held = f"gateway {theirs[0][0]}" if theirs else "no gateway"
        raise ConflictError(
            f"{engine.location} already holds another vault ({held}); migrate moves this one"
            " into an empty database only"
        )
    members = "SELECT id FROM members"
    if set(engine.tuples(members, [])) - set(source.tuples(members, [])):
        raise ConflictError(
            f"{engine.location} already holds this gateway's cluster; add this machine to it"
            " with: gwvault cluster join"
        )
    tail = source.audit_tail()
    last = engine.tuples(
        "SELECT seq, action, prev_hash FROM audit_events ORDER BY seq DESC LIMIT 1", []
    )
    follows = tail and last and (last[0][0], last[0][1]) == (tail[0] + 1, MIGRATED_ACTION)
    if follows and tail and bytes(last[0][2] or b"") == tail[1]:
        return "copied"
    return "partial"


def check_same_rows(source: StoreEngine, target: StoreEngine) -> None:
    """``StorageError`` unless every copied table holds the same rows in both."""
    differing = [
        table.name
        for table in copied_tables(source, target)
        if table_digest(source, table) != table_digest(target, table)
    ]
    if differing:
        raise StorageError(
            f"the copy in {target.location} differs from {source.location} in"
            f" {', '.join(differing)}: the vault changed between two runs of migrate, or the"
            " database was written meanwhile; empty the database (drop and create it) and run"
            " migrate again"
        )


def verify_copy(gateway: Gateway, expected_tail: _AuditTail | None) -> VerifiedCopy:
    """Check the vault copy ``gateway`` opened through its new store: its trail
    ends at ``expected_tail`` (if given) and verifies, and every credential
    opens.  Records nothing; ``IntegrityError`` says what failed."""
    store = gateway.store
    if expected_tail is not None and store.audit_tail() != expected_tail:
        raise IntegrityError(
            f"the audit trail in {store.location} does not end at this vault's last entry"
            f" ({expected_tail[0]}); run migrate again into an empty database"
        )
    report = AuditLog(gateway).verify()
    if not report.ok:
        raise IntegrityError(
            f"the audit trail copied to {store.location} does not verify ({report.summary()});"
            " this machine goes on with its vault file"
        )
    opening = CredentialService(gateway).try_opening()
    if opening.failed:
        shown = ", ".join(opening.failed[:5]) + (", ..." if len(opening.failed) > 5 else "")
        raise IntegrityError(
            f"{len(opening.failed)} credentials copied to {store.location} do not open ({shown});"
            " this machine goes on with its vault file"
        )
    return VerifiedCopy(len(opening.opened), report.entries, report.summary())


def switch_data_dir(data_dir: DataDir, location: PostgresLocation, gateway: Gateway) -> None:
    """Make this machine the first member of a cluster on ``location`` (its
    member row, member key and wraps) and point the data dir at it (``cluster.json``).

    One transaction in the target: the member is founded (``found_cluster``),
    this machine's keystore binding is recorded as the member's, and the
    endpoint keeps its TLS certificate, its key rewrapped as the member's.
    ``cluster.json`` is written inside it, just before the commit: if the
    commit then fails, the data dir names a member the store does not hold and
    refuses to unlock; remove ``cluster.json`` and run migrate again.  The
    vault file stays where it was, untouched: a backup of the vault as it was.
    """
    store, context = gateway.store, gateway.context
    versions = [int(row["version"]) for row in store.rows("SELECT version FROM master_keys", [])]
    master_keys = {version: gateway.master_key_for(version) for version in versions}
    tls = _single_machine_tls(gateway)
    membership = ClusterMembership(location, new_member_id(context.random), gateway.epoch)
    store.member_id = membership.member_id
    member = Gateway.with_master_keys(data_dir, store, gateway.keystore, context, master_keys)
    with store.write():
        found_cluster(member, list(master_keys.values()), None, membership.epoch)
        write_new_binding(data_dir, store, member.keystore)  # the member's own digest setting
        store.delete_setting(BINDING_DIGEST)
        if tls is not None:
            identity, source = tls
            store.execute("DELETE FROM tls_identity WHERE id = ?", [_SINGLE_MACHINE_TLS_ROW])
            store_tls_identity(member, member.master_key, identity, source)
        write_membership(data_dir.path, membership)


# A single machine's TLS row is id 1; in PostgreSQL's text column, '1'.
_SINGLE_MACHINE_TLS_ROW = "1"


def _single_machine_tls(gateway: Gateway) -> tuple[TlsIdentity, str] | None:
    """The endpoint's TLS identity as the single machine stored it (its key
    unwrapped), to be stored again as the first member's."""
    rows = gateway.store.rows(
        "SELECT cert_pem, wrapped_key, gmk_version, source FROM tls_identity WHERE id = ?",
        [_SINGLE_MACHINE_TLS_ROW],
    )
    if not rows:
        return None
    row = rows[0]
    gmk = gateway.master_key_for(int(row["gmk_version"]))
    key = gmk.unwrap(bytes(row["wrapped_key"]), tls_key_context(gateway.gateway_id))
    return TlsIdentity(str(row["cert_pem"]).encode("ascii"), key), str(row["source"])
