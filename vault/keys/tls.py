"""The endpoint's TLS identity in the vault: generate, import, show, hand to the server.

The key is stored wrapped by the GMK (context ``gwvault/tls-key/v1|<gateway>``)
and unwrapped only when ``gwvault serve`` starts.
"""

from __future__ import annotations

import socket
from typing import Any, Protocol

from agent_keys.errors import NotFoundError
from agent_keys.master_key import MasterKey
from agent_keys.secret import Secret
from agent_keys.tls_identity import TlsIdentity, generate_tls_identity, parse_tls_import
from vault.audit.trail import AuditTrail
from vault.context import RequestContext
from vault.store.vault_store import VaultStore


class OpenedVault(Protocol):
    """What the TLS identity needs of an opened vault (``vault.gateway.Gateway``).

    A protocol, not an import: the gateway stores a TLS identity while it is
    being initialised, so it imports this module.
    """

    store: VaultStore
    context: RequestContext
    audit: AuditTrail

    @property
    def gateway_id(self) -> str: ...

    @property
    def member_id(self) -> str | None: ...

    @property
    def master_key(self) -> MasterKey: ...

    def master_key_for(self, version: int) -> MasterKey: ...


def tls_key_context(gateway_id: str, member_id: str | None = None) -> bytes:
    """A single machine's TLS key, or one cluster member's (whose own identity
    it is: a row moved to another member's slot does not unwrap)."""
    base = f"gwvault/tls-key/v1|{gateway_id}"
    return (base if member_id is None else f"{base}|member={member_id}").encode()


def tls_row_id(gateway: OpenedVault) -> int | str:
    """The endpoint identity's row: a single machine's is 1, a member's its id."""
    return 1 if gateway.member_id is None else gateway.member_id


def store_tls_identity(
    gateway: OpenedVault, gmk: MasterKey, identity: TlsIdentity, source: str
) -> None:
    """Replace the endpoint's TLS identity (inside the caller's write, or its own)."""
    wrapped = gmk.wrap(
        identity.private_key,
        tls_key_context(gateway.gateway_id, gateway.member_id),
        gateway.context.random,
    )
    with gateway.store.write():
        gateway.store.execute(
            "INSERT INTO tls_identity (id, cert_pem, wrapped_key, gmk_version, source, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " cert_pem = excluded.cert_pem, wrapped_key = excluded.wrapped_key,"
            " gmk_version = excluded.gmk_version,"
            " source = excluded.source, created_at = excluded.created_at",
            [
                tls_row_id(gateway),
                identity.chain_pem.decode("ascii"),
                wrapped,
                gmk.version,
                source,
                gateway.context.now_iso(),
            ],
        )
        facts = identity.facts()
        action = "tls.imported" if source == "imported" else "tls.generated"
        gateway.audit.record(
            action, gateway.gateway_id, sha256=facts["sha256"], names=facts["names"]
        )


def generate_for(gateway: OpenedVault, gmk: MasterKey) -> TlsIdentity:
    """A new self-signed identity for this machine's names."""
    names = [
        name for name in {socket.gethostname(), socket.getfqdn()} if name and name != "localhost"
    ]
    return generate_tls_identity(names, gateway.context.clock(), gateway.context.random)


class TlsService:
    """``gwvault tls show|import|regenerate`` and the material ``serve`` loads."""

    def __init__(self, gateway: OpenedVault) -> None:
        self._gateway = gateway

    def show(self) -> dict[str, Any]:
        row = self._row()
        facts: dict[str, Any] = TlsIdentity(row["cert_pem"].encode("ascii"), Secret(b"")).facts()
        return {**facts, "source": row["source"], "created_at": row["created_at"]}

    def regenerate(self) -> dict[str, Any]:
        gmk = self._gateway.master_key
        store_tls_identity(self._gateway, gmk, generate_for(self._gateway, gmk), "generated")
        return self.show()

    def import_identity(self, chain_pem: bytes, key_pem: Secret) -> dict[str, Any]:
        identity = parse_tls_import(chain_pem, key_pem, self._gateway.context.clock())
        store_tls_identity(self._gateway, self._gateway.master_key, identity, "imported")
        return self.show()

    def server_identity(self) -> TlsIdentity:
        """The chain and the unwrapped key, for the server's SSL context only."""
        row = self._row()
        gmk = self._gateway.master_key_for(row["gmk_version"])
        context = tls_key_context(self._gateway.gateway_id, self._gateway.member_id)
        key = gmk.unwrap(row["wrapped_key"], context)
        return TlsIdentity(row["cert_pem"].encode("ascii"), key)

    def _row(self) -> dict[str, Any]:
        rows = self._gateway.store.rows(
            "SELECT * FROM tls_identity WHERE id = ?", [tls_row_id(self._gateway)]
        )
        if not rows:
            raise NotFoundError("the endpoint has no TLS certificate; run: gwvault tls regenerate")
        return rows[0]
