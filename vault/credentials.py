"""The credential lifecycle: put, list, show, test, verify, use, delete.

Each operation runs in the request's context and records itself in the audit
trail in the same transaction as its change.  Secrets go in as ``Secret`` or
as an EncryptedCredential, are stored sealed (``vault.format.envelope``), and come out
only to a connection test or to the gateway agent (``use``), never to a
creator or a listing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from agent_keys.errors import IntegrityError, InvalidInputError, NotFoundError
from agent_keys.secret import Secret
from vault.access.destination_policy import policy_for
from vault.audit.trail import Outcome
from vault.connectors.connection import ConnectionCredential, ConnectionTestResult
from vault.connectors.dispatch import test_connection, validate_data_source
from vault.format.data_source import (
    AuthType,
    DataSource,
    parse_auth_type,
    parse_data_source_type,
    parse_tls_mode,
    weakens_tls,
)
from vault.format.encrypted_credential import CredentialPayload, open_credential
from vault.format.envelope import CredentialBinding, open_at_rest, seal_at_rest
from vault.gateway import Gateway
from vault.names import check_datasource_name
from vault.store.records import CredentialRecord


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


class CredentialService:
    """Credential operations on one opened gateway vault."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._store = gateway.store

    def put(self, name: str, source: DataSource, payload: CredentialPayload) -> PutResult:
        """Store (create or update) the credential ``name`` from a plaintext payload."""
        check_datasource_name(name)
        validate_data_source(
            source, _connection_credential(payload.auth, payload.username, payload.secret)
        )
        return self._save(name, source, payload, sealed_input=False)

    def put_sealed(
        self, name: str, source: DataSource, token: str, also: Callable[[], None] | None = None
    ) -> PutResult:
        """Store a credential from an EncryptedCredential sealed for ``name``.

        Refuses (``InvalidInputError``, recorded as refused) a blob that does not
        open for this gateway and this data source.  ``also`` runs inside the
        same write (an entry link is consumed with the credential it stored).
        """
        payload = self._open_sealed(name, source, token)
        return self._save(name, source, payload, sealed_input=True, also=also)

    def test_sealed(
        self,
        name: str,
        source: DataSource,
        token: str,
        timeout: float = 10.0,
        *,
        any_destination: bool = False,
    ) -> ConnectionTestResult:
        """Test an EncryptedCredential against its data source without storing it.

        ``any_destination`` (admins only; the edges decide) skips the address
        checks of the destination policy; the TLS policy always applies.
        """
        payload = self._open_sealed(name, source, token)
        login = _connection_credential(payload.auth, payload.username, payload.secret)
        return self._run_test(name, source, login, timeout, any_destination, stored=False)

    def _run_test(
        self,
        name: str,
        source: DataSource,
        login: ConnectionCredential,
        timeout: float,
        any_destination: bool,
        *,
        stored: bool,
    ) -> ConnectionTestResult:
        policy = policy_for(self._gateway, any_network=any_destination)
        result = test_connection(source, login, timeout, policy=policy)
        outcome: Outcome = "ok" if result.ok else "failed"
        if result.reason == "refused_by_policy":
            outcome = "refused"
        # The detail is kept: only admins and auditors read the trail, and an
        # admin needs the server's words to help whoever tested (T-CN-3).
        self._gateway.audit.record(
            "credential.tested", name, outcome, reason=result.reason, detail=result.detail,
            stored=stored,
        )  # fmt: skip
        return result

    def _open_sealed(self, name: str, source: DataSource, token: str) -> CredentialPayload:
        check_datasource_name(name)
        gateway = self._gateway
        try:
            payload = open_credential(token, gateway.private_keys, gateway.gateway_id, name)
        except IntegrityError as e:
            gateway.audit.record(
                "credential.rejected", name, "refused", reason="encrypted-credential"
            )
            raise InvalidInputError(str(e)) from e
        validate_data_source(
            source, _connection_credential(payload.auth, payload.username, payload.secret)
        )
        return payload

    def _save(
        self,
        name: str,
        source: DataSource,
        payload: CredentialPayload,
        *,
        sealed_input: bool,
        also: Callable[[], None] | None = None,
    ) -> PutResult:
        gateway, now = self._gateway, self._gateway.context.now_iso()
        gmk = gateway.master_key
        parse_tls_mode(source.tls)  # a new write chooses a mode; legacy "prefer" is not one
        with self._store.write():
            existing = self._store.credential(name)
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
            )
            self._store.save_credential(record)
            gateway.audit.record(
                "credential.updated" if existing else "credential.created",
                name,
                credential_id=binding.credential_id,
                version=binding.version,
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

    def list(self) -> list[CredentialRecord]:
        return self._store.credentials()

    def get(self, name: str) -> CredentialRecord:
        """The stored credential ``name``; ``NotFoundError`` if there is none."""
        record = self._store.credential(name)
        if record is None:
            raise NotFoundError(f"no credential named {name!r}; see: gwvault credentials list")
        return record

    def delete(self, name: str) -> None:
        """Delete the credential and its wrapped data key (crypto-shred)."""
        with self._store.write():
            record = self.get(name)
            self._store.delete_credential(record.binding.credential_id)
            self._gateway.audit.record(
                "credential.deleted", name, credential_id=record.binding.credential_id
            )

    def test(
        self, name: str, timeout: float = 10.0, *, any_destination: bool = False
    ) -> ConnectionTestResult:
        """Connect to the data source with the stored credential; record the outcome.

        ``any_destination`` as for ``test_sealed``.
        """
        resolved = self._resolve(self.get(name))
        login = _connection_credential(resolved.auth, resolved.username, resolved.secret)
        return self._run_test(name, resolved.source, login, timeout, any_destination, stored=True)

    def verify(self, name: str | None = None) -> VerifyReport:
        """Open every stored credential (or one) without revealing it."""
        records = [self.get(name)] if name is not None else self.list()
        opened: list[str] = []
        failed: list[str] = []
        for record in records:
            try:
                self._open(record)
            except IntegrityError:
                failed.append(record.name)
            else:
                opened.append(record.name)
        self._gateway.audit.record(
            "credentials.verified",
            name,
            "ok" if not failed else "failed",
            opened=len(opened),
            failed=len(failed),
        )
        return VerifyReport(opened, failed)

    def use(self, name: str, purpose: str) -> ResolvedCredential:
        """Open a stored credential for the gateway agent; every use is recorded.

        Fails closed: when the use cannot be recorded, the secret is not returned.
        """
        record = self.get(name)
        try:
            resolved = self._resolve(record)
        except IntegrityError:
            self._gateway.audit.record("credential.used", name, "failed", purpose=purpose)
            raise
        self._gateway.audit.record(
            "credential.used", name, credential_id=record.binding.credential_id, purpose=purpose
        )
        return resolved

    def _resolve(self, record: CredentialRecord) -> ResolvedCredential:
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
    """The stored TLS mode when an update lets the secret go to more servers (for the trail).

    Seam (issue 14): changing where a secret may be sent needs only the right to
    write the credential for now, which the caller has shown; binding the
    sealed credential to its target will make it need a new seal.
    """
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
