"""API tokens and single-use entry links: bearer secrets an admin hands out.

An API token acts with a role until revoked.  An entry link lets one person
enter the credential of one named data source, once, within its lifetime (at
most an hour), without an account.  Both are shown once and stored hashed.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Any

from agent_keys.errors import AccessDeniedError, ConflictError, InvalidInputError, NotFoundError
from vault.access.bearer_secrets import bearer_hash, new_bearer_secret
from vault.access.policy import Principal, parse_role
from vault.gateway import Gateway
from vault.names import check_datasource_name

TOKEN_PREFIX = "gwv_"  # noqa: S105 - a marker that makes leaked tokens easy to scan for
LONGEST_ENTRY_LINK = datetime.timedelta(hours=1)
_LINK_REFUSED = "this entry link is unknown, expired or already used; ask for a new one"


@dataclass(frozen=True)
class EntryLink:
    id: str
    datasource: str
    expires_at: datetime.datetime

    def principal(self) -> Principal:
        return Principal("entry-link", self.id, None, self.datasource)


class AccessGrants:
    """API tokens and entry links of one opened gateway vault."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._store = gateway.store
        self._audit = gateway.audit

    # -- API tokens ---------------------------------------------------------

    def create_token(self, name: str, role: str) -> str:
        """A new token (returned once, never stored in clear) acting as ``role``."""
        check_datasource_name(name)  # the same safe character set
        checked_role = parse_role(role)
        token, token_hash = new_bearer_secret(self._gateway.context.random, TOKEN_PREFIX)
        with self._store.write():
            if self._store.rows("SELECT 1 FROM api_tokens WHERE name = ?", [name]):
                raise ConflictError(
                    f"a token named {name!r} exists; revoke it or pick another name"
                )
            self._store.execute(
                "INSERT INTO api_tokens (name, role, token_hash, created_by, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [name, checked_role, token_hash, self._gateway.context.actor, self._now()],
            )
            self._audit.record("token.created", name, role=checked_role)
        return token

    def revoke_token(self, name: str) -> None:
        with self._store.write():
            if not self._store.rows(
                "SELECT 1 FROM api_tokens WHERE name = ? AND revoked_at IS NULL", [name]
            ):
                raise NotFoundError(f"no live token named {name!r}; see: gwvault tokens list")
            self._store.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE name = ?", [self._now(), name]
            )
            self._audit.record("token.revoked", name)

    def tokens(self) -> list[dict[str, Any]]:
        """Name, role, who made it and when, and whether it is revoked; never the token."""
        return self._store.rows(
            "SELECT name, role, created_by, created_at, revoked_at FROM api_tokens ORDER BY name",
            [],
        )

    def principal_for_token(self, token: str) -> Principal | None:
        """The caller a bearer token stands for, or None (unknown or revoked)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            return None
        rows = self._store.rows(
            "SELECT name, role FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
            [bearer_hash(token)],
        )
        return Principal("token", rows[0]["name"], parse_role(rows[0]["role"])) if rows else None

    # -- entry links ------------------------------------------------------------

    def create_entry_link(
        self, datasource: str, lifetime: datetime.timedelta
    ) -> tuple[str, EntryLink]:
        """A single-use secret for entering ``datasource``'s credential, and the link."""
        check_datasource_name(datasource)
        if not datetime.timedelta(0) < lifetime <= LONGEST_ENTRY_LINK:
            raise InvalidInputError("an entry link expires within an hour (--expires 1m to 60m)")
        secret, link_hash = new_bearer_secret(self._gateway.context.random)
        link = EntryLink(str(uuid.uuid4()), datasource, self._gateway.context.clock() + lifetime)
        with self._store.write():
            self._store.execute(
                "INSERT INTO entry_links (id, datasource, link_hash, created_by, created_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                [link.id, datasource, link_hash, self._gateway.context.actor, self._now(),
                 link.expires_at.isoformat()],
            )  # fmt: skip
            self._audit.record(
                "entry-link.created",
                datasource,
                link_id=link.id,
                expires_at=link.expires_at.isoformat(),
            )
        return secret, link

    def entry_link(self, secret: str) -> EntryLink:
        """The live link for ``secret``; ``AccessDeniedError`` if unknown, used or expired."""
        rows = self._store.rows(
            "SELECT id, datasource, expires_at, used_at FROM entry_links WHERE link_hash = ?",
            [bearer_hash(secret)],
        )
        if not rows or rows[0]["used_at"] is not None:
            raise AccessDeniedError(_LINK_REFUSED)
        link = EntryLink(
            rows[0]["id"],
            rows[0]["datasource"],
            datetime.datetime.fromisoformat(rows[0]["expires_at"]),
        )
        if link.expires_at <= self._gateway.context.clock():
            self._audit.record("entry-link.expired", link.datasource, "refused", link_id=link.id)
            raise AccessDeniedError(_LINK_REFUSED)
        return link

    def consume_entry_link(self, link: EntryLink) -> None:
        """Mark the link used; call inside the write that stores its credential.

        Checked again inside that write, so two uses racing each other cannot
        both succeed.
        """
        used = self._store.rows("SELECT used_at FROM entry_links WHERE id = ?", [link.id])
        if not used or used[0]["used_at"] is not None:
            raise AccessDeniedError(_LINK_REFUSED)
        self._store.execute(
            "UPDATE entry_links SET used_at = ? WHERE id = ? AND used_at IS NULL",
            [self._now(), link.id],
        )
        self._audit.record("entry-link.used", link.datasource, link_id=link.id)

    def _now(self) -> str:
        return self._gateway.context.now_iso()
