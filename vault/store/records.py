"""The rows of the vault database, as typed records (no secrets in clear)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent_keys.recovery_key import RecoveryKdfParams, RecoveryWrap
from vault.format.ca_certificates import ca_sha256
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


@dataclass(frozen=True)
class CredentialRecord:
    """A stored credential: metadata in clear, the secret sealed."""

    binding: CredentialBinding
    sealed: SealedSecret
    created_at: str
    updated_at: str
    owner: str | None = None  # the actor that created it; a creator may change only its own

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
            "tls_ca_sha256": ca_sha256(b.ca_pem) if b.ca_pem else None,
            "version": b.version,
            "key_version": self.sealed.gmk_version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "owner": self.owner,
        }
