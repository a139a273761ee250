"""The credential lifecycle: put, list, show, test, verify, use, and the
life beside the secret (``vault.credential_life``): disable, enable, delete
(soft), restore, purge, and the owner's dates.

Each operation runs in the request's context and records itself in the audit
trail in the same transaction as its change.  Secrets go in as ``Secret`` or
as an EncryptedCredential, are stored sealed (``vault.format.envelope``), and
come out only to a connection test or to the gateway agent (``use``), never
to a creator or a listing.  An EncryptedCredential opens only for the target
it was sealed for, so a secret is stored for, and tested against, exactly
that target; a new server needs a new seal.

For a caller of the endpoint (a ``Caller``) every decision is taken inside
the transaction that acts on it; the CLI's local operator passes none.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from agent_keys.errors import (
    AccessDeniedError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from agent_keys.secret import Secret
from vault.access.callers import Caller
from vault.access.destination_policy import policy_for
from vault.access.policy import Action, Principal, may
from vault.access.row_seal import TamperedRowError, record_refusal
from vault.access.seal_policy import load_seal_policy
from vault.audit.trail import DetailValue, Outcome
from vault.connectors.connection import ConnectionCredential, ConnectionTestResult
from vault.connectors.destinations import DestinationPolicy
from vault.connectors.dispatch import test_connection, validate_data_source
from vault.connectors.sqlite import check_file_for_put
from vault.credential_life import (
    DEFAULT_RETENTION_DAYS,
    LIFE_ACTIONS,
    RETENTION_SETTING,
    CredentialUnavailableError,
    LifeChange,
    check_name_free,
    check_usable,
    deleted_life,
    entry_describes,
    is_past,
    life_details,
    parse_retention_days,
)
from vault.format.data_source import (
    AuthType,
    DataSource,
    parse_auth_type,
    parse_data_source_type,
    parse_tls_mode,
    weakens_tls,
)
from vault.format.encrypted_credential import (
    CredentialPayload,
    OpenedCredential,
    SealedTarget,
    open_credential,
)
from vault.format.envelope import CredentialBinding, open_at_rest, seal_at_rest
from vault.gateway import Gateway
from vault.health.status import record_test
from vault.names import check_datasource_name
from vault.store.records import CredentialLife, CredentialRecord

UseRecorder = Callable[[str, dict[str, DetailValue]], None]
"""Writes the ``credential.used`` entry of a credential name with its details."""


@dataclass(frozen=True)
class PutResult:
    record: CredentialRecord
    created: bool


@dataclass(frozen=True)
class VerifyReport:
    """Which stored credentials open with the vault's keys and which do not."""

    opened: list[str]
    failed: list[str]


@dataclass(frozen=True)
class ResolvedCredential:
    """A stored credential opened for use; its secret stays a ``Secret``."""

    name: str
    source: DataSource
    auth: AuthType
    username: str | None
    secret: Secret | None


@dataclass(frozen=True)
class PreparedTest:
    """A stored credential's connection test, decided and opened: run it with
    no transaction open (it takes seconds), then record it."""

    record: CredentialRecord
    source: DataSource
    login: ConnectionCredential = field(repr=False)
    policy: DestinationPolicy

    def run(self, timeout: float) -> ConnectionTestResult:
        """The test itself (``test_connection``): network I/O, no vault access."""
        return test_connection(self.source, self.login, timeout, policy=self.policy)


class CredentialService:
    """Credential operations on one opened gateway vault."""

    def __init__(self, gateway: Gateway, caller: Caller | None = None) -> None:
        self._gateway = gateway
        self._store = gateway.store
        self._caller = caller

    def put(
        self,
        name: str,
        source: DataSource,
        payload: CredentialPayload,
        *,
        life: LifeChange | None = None,
    ) -> PutResult:
        """Store (create or update) the credential ``name`` from a plaintext payload.

        ``life`` sets the owner's dates (expiry, rotation, contact); None keeps
        the stored ones."""
        check_datasource_name(name)
        validate_data_source(
            source, _connection_credential(payload.auth, payload.username, payload.secret)
        )
        self._check_sqlite_file(source)
        put_at = int(self._gateway.context.clock().timestamp())
        opened = OpenedCredential(payload, put_at)
        return self._save(name, source, opened, sealed_input=False, life=life)

    def put_sealed(
        self,
        name: str,
        source: DataSource,
        token: str,
        also: Callable[[], None] | None = None,
        *,
        life: LifeChange | None = None,
    ) -> PutResult:
        """Store a credential from an EncryptedCredential sealed for ``name`` and ``source``.

        Refuses (``InvalidInputError``, recorded as refused) a blob that does not
        open for this gateway, data source and target, or that is stale (the
        admin's seal policy, or older than the stored version).  ``also`` runs
        inside the same write (an entry link is consumed with its credential).
        """
        opened = self._open_sealed(name, source, token)
        self._check_sqlite_file(source)
        return self._save(name, source, opened, sealed_input=True, also=also, life=life)

    def _check_sqlite_file(self, source: DataSource) -> None:
        """A SQLite credential names a database file that is there (before any write).

        The local operator is told for any path; a web caller only where a
        connection test would answer (``sqlite.check_file_for_put``, T-CN-4).
        """
        if source.type != "sqlite":
            return
        policy = None if self._caller is None else policy_for(self._gateway, any_network=False)
        check_file_for_put(source.server, policy)

    def test_sealed(
        self,
        name: str,
        source: DataSource,
        token: str,
        timeout: float = 10.0,
        *,
        any_destination: bool = False,
    ) -> ConnectionTestResult:
        """Test an EncryptedCredential against the target it was sealed for, unstored.

        ``any_destination`` (the edge's view of an admin) skips the address checks
        of the destination policy if the caller, as the database says inside the
        deciding write, still may; the TLS policy always applies.
        """
        opened = self._open_sealed(name, source, token)
        with self._deciding("credential.test", name):
            existing = self._checked(self._store.credential(name))
            principal = self._authorize("credential.test", name, existing, source)
            check_name_free(existing)
            self._check_fresh(name, opened, existing)
        payload = opened.payload
        login = _connection_credential(payload.auth, payload.username, payload.secret)
        unrestricted = any_destination and self._unrestricted(principal)
        policy = policy_for(self._gateway, any_network=unrestricted)
        result = test_connection(source, login, timeout, policy=policy)
        outcome: Outcome = "ok" if result.ok else "failed"
        if result.reason == "refused_by_policy":
            outcome = "refused"
        # The detail is kept: only admins and auditors read the trail, and an
        # admin needs the server's words to help whoever tested (T-CN-3).
        self._gateway.audit.record(
            "credential.tested", name, outcome, reason=result.reason, detail=result.detail,
            stored=False,
        )  # fmt: skip
        return result

    def _unrestricted(self, principal: Principal | None) -> bool:
        # The CLI's local operator (no caller) may test anywhere, as an admin may.
        return principal is None or may(principal, "tests.unrestricted")

    def _open_sealed(self, name: str, source: DataSource, token: str) -> OpenedCredential:
        check_datasource_name(name)
        gateway = self._gateway
        try:
            target = SealedTarget.of(source)
            opened = open_credential(token, gateway.private_keys, gateway.gateway_id, name, target)
        except IntegrityError as e:
            if self._caller is not None and self._caller.principal.kind == "entry-link":
                # Garbage posted to an entry link: rate-limited per client address.
                gateway.audit.record_unauthenticated(
                    "credential.rejected", name, "refused", reason="encrypted-credential"
                )
            else:
                gateway.audit.record(
                    "credential.rejected", name, "refused", reason="encrypted-credential"
                )
            raise InvalidInputError(str(e)) from e
        payload = opened.payload
        validate_data_source(
            source, _connection_credential(payload.auth, payload.username, payload.secret)
        )
        return opened

    def _check_fresh(
        self, name: str, opened: OpenedCredential, existing: CredentialRecord | None
    ) -> None:
        policy = load_seal_policy(self._gateway)
        stored_at = existing.stored_at() if existing else None
        try:
            policy.check(opened.issued_at, self._gateway.context.clock(), stored_at)
        except InvalidInputError:
            self._gateway.audit.record("credential.rejected", name, "refused", reason="stale-seal")
            raise

    def _save(
        self,
        name: str,
        source: DataSource,
        opened: OpenedCredential,
        *,
        sealed_input: bool,
        also: Callable[[], None] | None = None,
        life: LifeChange | None = None,
    ) -> PutResult:
        gateway, now = self._gateway, self._gateway.context.now_iso()
        gmk = gateway.master_key
        payload = opened.payload
        parse_tls_mode(source.tls)  # a new write chooses a mode; legacy "prefer" is not one
        with self._deciding("credential.write", name):
            existing = self._checked(self._store.credential(name))
            self._authorize("credential.write", name, existing, source)
            check_name_free(existing)
            if sealed_input:
                self._check_fresh(name, opened, existing)
            binding = CredentialBinding(
                gateway_id=gateway.gateway_id,
                credential_id=existing.binding.credential_id if existing else str(uuid.uuid4()),
                name=name,
                version=existing.binding.version + 1 if existing else 1,
                type=source.type,
                server=source.server,
                database=source.database,
                auth=payload.auth,
                username=payload.username,
                tls=source.tls,
                ca_pem=source.ca_pem,
            )
            secret = payload.secret if payload.secret is not None else Secret(b"")
            record = CredentialRecord(
                binding=binding,
                sealed=seal_at_rest(gmk, binding, secret, gateway.context.random),
                created_at=existing.created_at if existing else now,
                updated_at=now,
                owner=existing.owner if existing else gateway.context.actor,
                issued_at=opened.issued_at,
                life=(life or LifeChange()).applied_to(existing.life if existing else None),
            )
            record = replace(record, mac=gateway.rows.sealed("credentials", record.sealed_row()))
            self._store.save_credential(record)
            gateway.audit.record(
                "credential.updated" if existing else "credential.created",
                name,
                **life_details(record),
                type=binding.type,
                auth=binding.auth,
                key_version=gmk.version,
                input="encrypted-credential" if sealed_input else "secret",
                tls=source.tls,
                tls_weakened_from=_weakened_from(existing, source),
            )
            if also is not None:
                also()
        return PutResult(record, created=existing is None)

    def list(self, *, deleted: bool = False) -> list[CredentialRecord]:
        """Every stored credential (or, ``deleted``, every deleted one); ``TamperedRowError``
        if a row was written outside gwvault."""
        records = self._store.credentials(deleted=deleted)
        for record in records:
            self._gateway.rows.check("credentials", record.sealed_row())
        return records

    def get(self, name: str) -> CredentialRecord:
        """The stored credential ``name``; ``NotFoundError`` if there is none,
        ``TamperedRowError`` if its row was written or put back outside gwvault."""
        # One snapshot: the row and the trail entry it is checked against must not
        # straddle another writer's commit.
        nested = self._store.in_write
        try:
            with self._store.reading():
                record = self._checked(self._store.credential(name))
        except TamperedRowError as e:
            if not nested:  # a caller's transaction records it after its rollback
                record_refusal(self._gateway.audit, e)
            raise
        if record is None:
            raise NotFoundError(f"no credential named {name!r}; see: gwvault credentials list")
        return record

    def _checked(self, record: CredentialRecord | None) -> CredentialRecord | None:
        """``record`` if its seal holds and it is the version the trail last recorded.

        A row put back from an older copy of the file has a valid old seal; the
        trail's newest MACed entry for the name tells the two apart.
        """
        if record is None:
            return None
        rows = self._gateway.rows
        rows.check("credentials", record.sealed_row())

        def agrees(action: str, details: dict[str, Any]) -> bool:
            return entry_describes(action, details, record)

        rows.check_current("credentials", record.name, record.name, LIFE_ACTIONS, agrees)
        return record

    def delete(self, name: str) -> CredentialRecord:
        """Delete the credential softly: it opens for nobody and keeps its name
        until it is restored or, after the retention window, purged."""
        now = self._gateway.context.clock()

        def deleted(record: CredentialRecord) -> CredentialLife:
            check_name_free(record)  # deleted already: its window is not restarted
            return deleted_life(record.life, now, self.retention_days())

        return self._change_life(name, "credential.deleted", deleted)

    def restore(self, name: str) -> CredentialRecord:
        """Bring a deleted credential back as it was (disabled stays disabled)."""

        def restored(record: CredentialRecord) -> CredentialLife:
            if record.life.state != "deleted":
                raise ConflictError(f"the credential {name} is not deleted")
            return replace(record.life, deleted_at=None, purge_after=None)

        return self._change_life(name, "credential.restored", restored)

    def disable(self, name: str) -> CredentialRecord:
        """Stop all use and tests of the credential without deleting it."""

        def disabled(record: CredentialRecord) -> CredentialLife:
            check_name_free(record)
            if record.life.state == "disabled":
                raise ConflictError(f"the credential {name} is disabled already")
            return replace(record.life, disabled_at=self._gateway.context.now_iso())

        return self._change_life(name, "credential.disabled", disabled)

    def enable(self, name: str) -> CredentialRecord:
        """Let a disabled credential be used and tested again."""

        def enabled(record: CredentialRecord) -> CredentialLife:
            check_name_free(record)
            if record.life.state != "disabled":
                raise ConflictError(f"the credential {name} is not disabled")
            return replace(record.life, disabled_at=None)

        return self._change_life(name, "credential.enabled", enabled)

    def change_life(self, name: str, change: LifeChange) -> CredentialRecord:
        """Set or clear the owner's dates (expiry, rotation, contact) of a stored credential."""

        def changed(record: CredentialRecord) -> CredentialLife:
            check_name_free(record)  # a deleted credential is restored first
            return change.applied_to(record.life)

        return self._change_life(name, "credential.life-changed", changed)

    def purge(self, name: str) -> None:
        """Destroy a deleted credential now: its row, with the wrapped data key, goes
        (crypto-shred).  An admin's act; a credential not deleted first is refused."""
        with self._deciding("credential.purge", name):
            record = self.get(name)
            self._authorize("credential.purge", name, record)
            if record.life.state != "deleted":
                raise ConflictError(
                    f"the credential {name} is not deleted; delete it first"
                    f" (gwvault credentials delete {name})"
                )
            self._purge(record, "admin")
        self._store.engine.drop_freed_pages()

    def purge_expired(
        self, step: Callable[[], contextlib.AbstractContextManager[None]] | None = None
    ) -> tuple[str, ...]:
        """Purge every deleted credential whose retention window has passed (the
        scheduled job, ``vault.credential_purge``); returns their names.

        Each is purged in its own write, ``step`` (a write fenced by the job's
        lease in a cluster), after its row is checked again in it."""
        now = self._gateway.context.clock()
        purged: list[str] = []
        for candidate in self._store.credentials(deleted=True):
            if not is_past(candidate.life.purge_after, now):
                continue
            with (step or self._store.write)():
                record = self._checked(self._store.credential(candidate.name))
                if record is None or record.life.state != "deleted":
                    continue
                if not is_past(record.life.purge_after, now):
                    continue
                self._purge(record, "retention")
            purged.append(record.name)
        if purged:
            self._store.engine.drop_freed_pages()
        return tuple(purged)

    def _purge(self, record: CredentialRecord, by: str) -> None:
        self._store.delete_credential(record.binding.credential_id)
        self._gateway.audit.record(
            "credential.purged", record.name, credential_id=record.binding.credential_id,
            version=record.binding.version, purged_by=by,
        )  # fmt: skip

    def retention_days(self) -> int:
        """How long a deleted credential is kept (the sealed setting, default 30 days)."""
        value = self._gateway.rows.setting(RETENTION_SETTING)
        return DEFAULT_RETENTION_DAYS if value is None else parse_retention_days(value)

    def set_retention_days(self, days: int) -> None:
        """Set how long credentials deleted from now on are kept (7 to 90 days)."""
        days = parse_retention_days(days)
        with self._deciding("credential.purge", RETENTION_SETTING):
            if self._caller is not None:
                self._caller.authorize(self._gateway, "credential.purge")
            self._gateway.rows.set_setting(RETENTION_SETTING, str(days))
            self._gateway.audit.record("credentials.retention-changed", None, days=days)

    def _change_life(
        self,
        name: str,
        action: str,
        new_life: Callable[[CredentialRecord], CredentialLife],
    ) -> CredentialRecord:
        """Change the life of the stored credential ``name``, decided, sealed and
        recorded in one write (``new_life`` may refuse with a ``VaultError``)."""
        with self._deciding("credential.manage", name):
            record = self.get(name)
            self._authorize("credential.manage", name, record)
            changed = replace(record, life=new_life(record), mac=None)
            changed = replace(
                changed, mac=self._gateway.rows.sealed("credentials", changed.sealed_row())
            )
            self._store.save_credential(changed)
            self._gateway.audit.record(action, name, **life_details(changed))
        return changed

    def test(
        self, name: str, timeout: float = 10.0, *, any_destination: bool = False
    ) -> ConnectionTestResult:
        """Connect to the data source with the stored credential; record the
        outcome and the credential's new status (``vault.health.status``).

        ``any_destination`` as for ``test_sealed``.
        """
        prepared = self.prepare_test(name, any_destination=any_destination)
        return record_test(self._gateway, prepared.record, prepared.run(timeout), "manual")

    def prepare_test(self, name: str, *, any_destination: bool = False) -> PreparedTest:
        """The test of the stored credential ``name``, decided (may the caller,
        is it usable) and opened, not yet run: the caller runs it holding no
        transaction and hands the result to ``vault.health.status.record_test``.

        ``any_destination`` as for ``test_sealed``.
        """
        with self._deciding("credential.test", name):
            record = self.get(name)
            principal = self._authorize("credential.test", name, record)
        resolved = self._resolve(record)
        login = _connection_credential(resolved.auth, resolved.username, resolved.secret)
        unrestricted = any_destination and self._unrestricted(principal)
        policy = policy_for(self._gateway, any_network=unrestricted)
        return PreparedTest(record, resolved.source, login, policy)

    def verify(self, name: str | None = None) -> VerifyReport:
        """Open every stored credential (or one) without revealing it; recorded."""
        report = self.try_opening(name)
        opened, failed = report.opened, report.failed
        self._gateway.audit.record(
            "credentials.verified",
            name,
            "ok" if not failed else "failed",
            opened=len(opened),
            failed=len(failed),
        )
        return report

    def try_opening(self, name: str | None = None) -> VerifyReport:
        """Open every stored credential (or one) without revealing it, and record
        nothing (a copy of the vault checked before it is used: vault.store_migration)."""
        # Deleted ones too: a restore must find them intact.
        records = [self.get(name)] if name is not None else self.list() + self.list(deleted=True)
        opened: list[str] = []
        failed: list[str] = []
        for record in records:
            try:
                self._open(record)
            except IntegrityError:
                failed.append(record.name)
            else:
                opened.append(record.name)
        return VerifyReport(opened, failed)

    def use(
        self, name: str, purpose: str, record_use: UseRecorder | None = None
    ) -> ResolvedCredential:
        """Open a stored credential for the gateway agent; every use is recorded.

        Fails closed: when the use cannot be recorded, the secret is not returned.
        ``record_use`` writes the entry of a successful use and returns once it
        is committed (the agent's group commit); by default it is written and
        committed here, alone.
        """
        record = self.get(name)
        try:
            resolved = self._resolve(record)
        except CredentialUnavailableError:
            self._gateway.audit.record(
                "credential.used", name, "refused", purpose=purpose, state=record.state
            )
            raise
        except IntegrityError:
            self._gateway.audit.record("credential.used", name, "failed", purpose=purpose)
            raise
        details: dict[str, DetailValue] = {
            "credential_id": record.binding.credential_id,
            "purpose": purpose,
        }
        (record_use or self._record_use)(name, details)
        return resolved

    def _record_use(self, name: str, details: dict[str, DetailValue]) -> None:
        self._gateway.audit.record("credential.used", name, "ok", **details)

    @contextlib.contextmanager
    def _deciding(self, action: Action, name: str) -> Iterator[None]:
        """A write in which the caller's authorization is decided and acted on.

        A refusal rolls the write back, so it is recorded after, on its own.
        """
        try:
            with self._store.write():
                yield
        except AccessDeniedError as e:
            if self._caller is not None:
                self._gateway.audit.record(
                    "access.refused", name, "refused", refused_action=action, reason=str(e)[:200]
                )
            raise
        except TamperedRowError as e:
            record_refusal(self._gateway.audit, e)
            raise

    def _authorize(
        self,
        action: Action,
        name: str,
        record: CredentialRecord | None,
        source: DataSource | None = None,
    ) -> Principal | None:
        """The caller's principal as the database says now (None: the CLI's operator)."""
        if self._caller is None:
            return None
        owner = record.owner if record else None
        return self._caller.authorize(
            self._gateway, action, datasource=name, owner=owner, source=source
        )

    def _resolve(self, record: CredentialRecord) -> ResolvedCredential:
        check_usable(record)  # a disabled or deleted credential opens for nobody
        b = record.binding
        secret = self._open(record)  # first: only opened facts are believed
        return ResolvedCredential(
            name=b.name,
            source=source_of(b),
            auth=parse_auth_type(b.auth),
            username=b.username,
            secret=secret if b.auth != "anonymous" else None,
        )

    def _open(self, record: CredentialRecord) -> Secret:
        gmk = self._gateway.master_key_for(record.sealed.gmk_version)
        return open_at_rest(gmk, record.binding, record.sealed)


def source_of(binding: CredentialBinding) -> DataSource:
    """The data source a stored binding names (believe it only once the secret opened)."""
    return DataSource(
        type=parse_data_source_type(binding.type),
        server=binding.server,
        database=binding.database,
        tls=parse_tls_mode(binding.tls, legacy=True),
        ca_pem=binding.ca_pem,
    )


def _weakened_from(existing: CredentialRecord | None, source: DataSource) -> str | None:
    """The stored TLS mode when an update lets the secret go to more servers (for the
    trail).  Such an update needs a blob sealed for the new target (the TLS policy
    is part of it), or the secret again at the CLI."""
    if existing is None:
        return None
    try:
        before = source_of(existing.binding)
    except InvalidInputError:
        return "unreadable"
    return before.tls if weakens_tls(before, source) else None


def _connection_credential(
    auth: str, username: str | None, secret: Secret | None
) -> ConnectionCredential:
    return ConnectionCredential(auth=parse_auth_type(auth), username=username, secret=secret)
