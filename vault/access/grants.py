"""API tokens and single-use entry links: bearer secrets an admin hands out.

An API token acts with a role until revoked.  An entry link lets one person
enter the credential of one named data source, once, within its lifetime (at
most an hour), without an account.  The admin fixes the link's target (type,
server, database, TLS policy) when making it, so its holder can seal for and
test against that server only, and at most ``ENTRY_LINK_TESTS`` times: a link
is not a port scanner (T-WEB-13).  Both are shown once and stored hashed.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Any

from agent_keys.errors import AccessDeniedError, ConflictError, InvalidInputError, NotFoundError
from vault.access.bearer_secrets import bearer_hash, new_bearer_secret
from vault.access.policy import Principal, parse_role
from vault.format.data_source import DataSource, parse_data_source_type, parse_tls_mode
from vault.gateway import Gateway
from vault.names import check_datasource_name

TOKEN_PREFIX = "gwv_"  # noqa: S105 - a marker that makes leaked tokens easy to scan for
LONGEST_ENTRY_LINK = datetime.timedelta(hours=1)
ENTRY_LINK_TESTS = 5
_LINK_REFUSED = "this entry link is unknown, expired or already used; ask for a new one"


@dataclass(frozen=True)
class EntryLink:
    id: str
    datasource: str
    expires_at: datetime.datetime
    target: DataSource

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
            self._gateway.rows.reseal("api_tokens", name)
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
            self._gateway.rows.reseal("api_tokens", name)
            self._audit.record("token.revoked", name)

    def tokens(self) -> list[dict[str, Any]]:
        """Name, role, who made it and when, and whether it is revoked; never the token.

        ``TamperedRowError`` if a row was written outside gwvault."""
        rows = self._store.rows(
            f"SELECT created_at, {self._gateway.rows.columns('api_tokens')} FROM api_tokens"  # noqa: S608 - fixed columns
            " ORDER BY name",
            [],
        )
        for row in rows:
            self._gateway.rows.check("api_tokens", row)
        shown = ("name", "role", "created_by", "created_at", "revoked_at")
        return [{column: row[column] for column in shown} for row in rows]

    def principal_for_token(self, token: str) -> Principal | None:
        """The caller a bearer token stands for, or None (unknown or revoked)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            return None
        return self.principal_for_token_hash(bearer_hash(token))

    def principal_for_token_hash(self, token_hash: bytes) -> Principal | None:
        """The caller of a live token by its stored hash (re-checked where a change is made)."""
        rows = self._store.rows(
            f"SELECT {self._gateway.rows.columns('api_tokens')} FROM api_tokens"  # noqa: S608 - fixed columns
            " WHERE token_hash = ? AND revoked_at IS NULL",
            [token_hash],
        )
        if not rows:
            return None
        row = rows[0]
        self._gateway.rows.check("api_tokens", row)  # a planted row is no token
        # A revoked token's older row, put back from a copy of the file, is no token.
        self._gateway.rows.check_current(
            "api_tokens", row["name"], row["name"], ("token.created", "token.revoked"),
            lambda action, _details: action != "token.revoked",
        )  # fmt: skip
        return Principal("token", row["name"], parse_role(row["role"]))

    # -- entry links ------------------------------------------------------------

    def create_entry_link(
        self, datasource: str, target: DataSource, lifetime: datetime.timedelta
    ) -> tuple[str, EntryLink]:
        """A single-use secret for entering ``datasource``'s credential, sealed for
        ``target`` only, and the link.  The caller validates ``target``."""
        check_datasource_name(datasource)
        if not datetime.timedelta(0) < lifetime <= LONGEST_ENTRY_LINK:
            raise InvalidInputError("an entry link expires within an hour (--expires 1m to 60m)")
        secret, link_hash = new_bearer_secret(self._gateway.context.random)
        expires_at = self._gateway.context.clock() + lifetime
        link = EntryLink(str(uuid.uuid4()), datasource, expires_at, target)
        with self._store.write():
            self._store.execute(
                "INSERT INTO entry_links (id, datasource, link_hash, created_by, created_at,"
                " expires_at, type, server, database, tls, ca_pem)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [link.id, datasource, link_hash, self._gateway.context.actor, self._now(),
                 expires_at.isoformat(), target.type, target.server, target.database,
                 target.tls, target.ca_pem],
            )  # fmt: skip
            self._gateway.rows.reseal("entry_links", link.id)
            self._audit.record(
                "entry-link.created",
                datasource,
                link_id=link.id,
                expires_at=expires_at.isoformat(),
                type=target.type,
                server=target.server,
                database=target.database,
                tls=target.tls,
            )
        return secret, link

    def entry_link(self, secret: str) -> EntryLink:
        """The live link for ``secret``; ``AccessDeniedError`` if unknown, used or expired."""
        rows = self._store.rows(
            f"SELECT {self._gateway.rows.columns('entry_links')} FROM entry_links"  # noqa: S608 - fixed columns
            " WHERE link_hash = ?",
            [bearer_hash(secret)],
        )
        return self._live(rows)

    def live_entry_link(self, link_id: str) -> EntryLink:
        """The link ``link_id`` if it is still unused and unexpired; ``AccessDeniedError``
        otherwise.  Called inside the transaction that acts for the link."""
        rows = self._store.rows(
            f"SELECT {self._gateway.rows.columns('entry_links')} FROM entry_links"  # noqa: S608 - fixed columns
            " WHERE id = ?",
            [link_id],
        )
        return self._live(rows)

    def count_entry_link_test(self, link: EntryLink) -> None:
        """Spend one of the link's connection tests (inside the caller's write);
        ``AccessDeniedError`` once they are used up."""
        rows = self._store.rows(
            f"SELECT {self._gateway.rows.columns('entry_links')} FROM entry_links"  # noqa: S608 - fixed columns
            " WHERE id = ?",
            [link.id],
        )
        if rows:
            self._gateway.rows.check("entry_links", rows[0])
        if not rows or int(rows[0]["tests_used"]) >= ENTRY_LINK_TESTS:
            # The link holder may ask again and again: rate-limited (vault.audit.coalesce).
            self._audit.record_unauthenticated(
                "entry-link.tests-used-up", link.datasource, "refused", link_id=link.id
            )
            raise AccessDeniedError(
                f"this entry link has made its {ENTRY_LINK_TESTS} connection tests;"
                " save the credential, or ask for a new link"
            )
        self._store.execute(
            "UPDATE entry_links SET tests_used = tests_used + 1 WHERE id = ?", [link.id]
        )
        self._gateway.rows.reseal("entry_links", link.id)

    def consume_entry_link(self, link: EntryLink) -> None:
        """Mark the link used; call inside the write that stores its credential.

        Checked again inside that write (unused and unexpired), so two uses
        racing each other, or a use begun before the link expired, cannot succeed.
        """
        self.live_entry_link(link.id)
        self._store.execute(
            "UPDATE entry_links SET used_at = ? WHERE id = ? AND used_at IS NULL",
            [self._now(), link.id],
        )
        self._gateway.rows.reseal("entry_links", link.id)
        self._audit.record("entry-link.used", link.datasource, link_id=link.id)

    def _live(self, rows: list[dict[str, Any]]) -> EntryLink:
        if not rows:
            raise AccessDeniedError(_LINK_REFUSED)
        row = rows[0]
        self._gateway.rows.check("entry_links", row)  # a planted link opens nothing
        # A used link's older row (used_at still empty), put back, opens nothing either.
        self._gateway.rows.check_current(
            "entry_links", row["id"], row["datasource"], ("entry-link.used",),
            lambda _action, _details: row["used_at"] is not None, link_id=row["id"],
        )  # fmt: skip
        if row["used_at"] is not None:
            raise AccessDeniedError(_LINK_REFUSED)
        expires_at = datetime.datetime.fromisoformat(row["expires_at"])
        if expires_at <= self._gateway.context.clock():
            # Anyone holding the old URL can cause this: rate-limited per address.
            self._audit.record_unauthenticated(
                "entry-link.expired", row["datasource"], "refused", link_id=row["id"]
            )
            raise AccessDeniedError(_LINK_REFUSED)
        if row["type"] is None:
            # Made before links named their target (schema 4): it could be used
            # against any server, so it is not honoured.
            raise AccessDeniedError(_LINK_REFUSED)
        target = DataSource(
            type=parse_data_source_type(row["type"]),
            server=row["server"],
            database=row["database"],
            tls=parse_tls_mode(row["tls"]),
            ca_pem=row["ca_pem"],
        )
        return EntryLink(row["id"], row["datasource"], expires_at, target)

    def _now(self) -> str:
        return self._gateway.context.now_iso()
