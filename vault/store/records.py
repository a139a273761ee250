"""The rows of the vault database, as typed records (no secrets in clear)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, fields
from typing import Any, Literal

from agent_keys.errors import StorageError
from agent_keys.recovery_key import RecoveryKdfParams, RecoveryWrap
from vault.format.data_source import ca_digest
from vault.format.envelope import CredentialBinding, SealedSecret


@dataclass(frozen=True)
class MasterKeyRecord:
    """One GMK version, wrapped by the keystore and by the recovery KEK."""

    version: int
    keystore_wrapped: bytes
    recovery_wrapped: bytes
    recovery_salt: bytes
    recovery_opslimit: int
    recovery_memlimit: int
    state: str
    created_at: str

    def recovery_wrap(self) -> RecoveryWrap:
        """This version's recovery wrap, with the Argon2id parameters that rebuild its KEK."""
        params = RecoveryKdfParams(
            self.recovery_salt, self.recovery_opslimit, self.recovery_memlimit
        )
        return RecoveryWrap(self.version, self.recovery_wrapped, params)


@dataclass(frozen=True)
class GatewayKeyRecord:
    """One gateway key pair version: the certificate in clear, the key GMK-wrapped."""

    version: int
    key_type: str
    cert_pem: str
    thumbprint: str
    wrapped_private_key: bytes
    gmk_version: int
    state: str
    created_at: str
    # 2: the wrap names the certificate's thumbprint, so a key can be opened only
    # as the key of that certificate; 1: rows from before schema 4.
    wrap_version: int = 2

    def wrap_context(self, gateway_id: str) -> bytes:
        """What this row's wrapped private key is bound to."""
        return identity_wrap_context(gateway_id, self.version, self.thumbprint, self.wrap_version)


def identity_wrap_context(
    gateway_id: str, version: int, thumbprint: str, wrap_version: int
) -> bytes:
    if wrap_version == 1:
        return f"gwvault/gateway-key/v1|{gateway_id}|{version}".encode()
    return f"gwvault/gateway-key/v2|{gateway_id}|{version}|{thumbprint}".encode()


CredentialState = Literal["active", "disabled", "deleted"]


@dataclass(frozen=True)
class CredentialLife:
    """A stored credential's life beside its secret (schema 7; all None before it).

    ``disabled_at``: stopped for use and tests, not deleted.  ``deleted_at``: in
    the retention window, opening for nobody, its name reserved, purged at
    ``purge_after``.  ``expires_at`` (an instant) and ``rotate_every`` (seconds)
    are the owner's word on when the secret stops working and how often it is
    to change; ``contact``, whom to tell.  Times are ISO 8601 UTC.
    """

    disabled_at: str | None = None
    deleted_at: str | None = None
    purge_after: str | None = None
    expires_at: str | None = None
    rotate_every: int | None = None
    contact: str | None = None

    @property
    def state(self) -> CredentialState:
        if self.deleted_at is not None:
            return "deleted"
        return "disabled" if self.disabled_at is not None else "active"

    def columns(self) -> dict[str, Any]:
        """The row's columns of these fields (``vault.store``, ``row_seal``)."""
        return {field.name: getattr(self, field.name) for field in fields(self)}


@dataclass(frozen=True)
class CredentialRecord:
    """A stored credential: metadata in clear, the secret sealed."""

    binding: CredentialBinding
    sealed: SealedSecret
    created_at: str
    updated_at: str
    owner: str | None = None  # the actor that created it; a creator may change only its own
    issued_at: int | None = None  # when this version was sealed or put (None: before schema 4)
    mac: bytes | None = None  # the row's seal (vault.access.row_seal)
    life: CredentialLife = CredentialLife()

    def sealed_row(self) -> dict[str, Any]:
        """The row's sealed columns (``vault.access.row_seal``) and its MAC."""
        b = self.binding
        return {"id": b.credential_id, "name": b.name, "version": b.version,
                "owner": self.owner, "issued_at": self.issued_at, "mac": self.mac,
                **self.life.columns()}  # fmt: skip

    @property
    def state(self) -> CredentialState:
        return self.life.state

    @property
    def name(self) -> str:
        return self.binding.name

    def metadata(self) -> dict[str, Any]:
        """What ``credentials list/show`` print: never the secret."""
        b = self.binding
        return {
            "name": b.name,
            "id": b.credential_id,
            "type": b.type,
            "server": b.server,
            "database": b.database,
            "auth": b.auth,
            "username": b.username,
            "tls": b.tls,
            "tls_ca_sha256": ca_digest(b.ca_pem),
            "version": b.version,
            "key_version": self.sealed.gmk_version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "owner": self.owner,
            "state": self.state,
            **self.life.columns(),
        }

    def stored_at(self) -> int:
        """When this version was sealed or put, in seconds: what a newer seal must not predate."""
        if self.issued_at is not None:
            return self.issued_at
        try:  # a row from before schema 4: its put time stands in
            return int(datetime.datetime.fromisoformat(self.updated_at).timestamp())
        except (TypeError, ValueError) as e:
            raise StorageError(f"the stored credential {self.name} has a damaged time") from e
