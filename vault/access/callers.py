"""A web or API caller and the grant it proved, decided again where it acts.

The web layer authenticates a request when its headers arrive, but a change
is written only after its body has been read, and a client can trickle the
body for minutes.  A decision taken at the start may be stale by then: the
token revoked, the session ended, the user's role changed, the entry link
used or expired, the credential created meanwhile by someone else.  So the
service re-reads the grant and decides inside the transaction that stores
the change (T-WEB-12); the early check at the edge only saves work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agent_keys.errors import AccessDeniedError, StorageError
from vault.access.accounts import Accounts
from vault.access.grants import AccessGrants
from vault.access.policy import Action, Principal, authorize
from vault.format.data_source import DataSource
from vault.gateway import Gateway

GrantKind = Literal["token", "session", "entry-link"]
_GONE = "your sign-in, token or link is no longer valid; nothing was changed"


@dataclass(frozen=True)
class Grant:
    """What a caller proved: a token's or a session id's SHA-256, or an entry link's id."""

    kind: GrantKind
    key: bytes | str


@dataclass(frozen=True)
class Caller:
    """An authenticated caller of the endpoint (the CLI's operator has none)."""

    principal: Principal
    grant: Grant

    def authorize(
        self,
        gateway: Gateway,
        action: Action,
        *,
        datasource: str | None = None,
        owner: str | None = None,
        source: DataSource | None = None,
    ) -> Principal:
        """Decide ``action`` for the caller as the database says now.

        Call inside the transaction that acts (a write when the decision
        spends something, such as an entry link's tests).  Raises
        ``AccessDeniedError`` when the grant is gone or no longer allows it.
        """
        if not gateway.store.in_write:
            raise StorageError("an authorization must be decided inside the transaction it guards")
        current = self._live_principal(gateway, action, source)
        authorize(current, action, datasource=datasource, owner=owner)
        return current

    def _live_principal(
        self, gateway: Gateway, action: Action, source: DataSource | None
    ) -> Principal:
        kind, key = self.grant.kind, self.grant.key
        if kind == "token" and isinstance(key, bytes):
            found = AccessGrants(gateway).principal_for_token_hash(key)
        elif kind == "session" and isinstance(key, bytes):
            session = Accounts(gateway).session_by_hash(key)
            found = session.principal if session else None
        elif kind == "entry-link" and isinstance(key, str):
            return self._live_link(gateway, key, action, source)
        else:
            found = None
        if found is None or found.name != self.principal.name:
            raise AccessDeniedError(_GONE)
        return found

    def _live_link(
        self, gateway: Gateway, link_id: str, action: Action, source: DataSource | None
    ) -> Principal:
        grants = AccessGrants(gateway)
        link = grants.live_entry_link(link_id)
        if source is not None and source != link.target:
            raise AccessDeniedError(
                "this entry link is for one server only: the credential must be for"
                f" {link.target.type} {link.target.server}"
            )
        if action == "credential.test":
            grants.count_entry_link_test(link)
        return link.principal()
