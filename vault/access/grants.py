"""API tokens and single-use entry links: bearer secrets an admin hands out.

An API token acts with a role until revoked.  An entry link lets one person
enter the credential of one named data source, once, within its lifetime (at
most an hour), without an account.  The admin fixes the link's target (type,
server, database, TLS policy) when making it, so its holder can seal for and
test against that server only, and at most ``ENTRY_LINK_TESTS`` times: a link
is not a port scanner (T-WEB-13).  Both are shown once and stored hashed.
"""

from __future__ import annotations

import contextlib
import datetime
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from agent_keys.errors import AccessDeniedError, ConflictError, InvalidInputError, NotFoundError
from vault.access.acting_caller import ActingCaller
from vault.access.bearer_secrets import bearer_hash, new_bearer_secret
from vault.access.policy import Principal, parse_role
from vault.access.row_seal import TamperedRowError, record_refusal
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
    created_by: str
    """The actor that made it (``user:ada``, ``os:root``): the entry page names them."""

    def principal(self) -> Principal:
        return Principal("entry-link", self.id, None, self.datasource)

    @property
    def maker(self) -> str:
        """Who made the link, as its holder reads it: a web user's name, or the
        account that ran ``gwvault`` on the gateway."""
        kind, _, name = self.created_by.partition(":")
        return {"user": name, "os": f"{name} (on the gateway)"}.get(kind, self.created_by)


@dataclass(frozen=True)
class OpenEntryLink:
    """A link as ``entry-link list`` and the page show it: never its secret."""

    link: EntryLink
    created_at: str
    tests_used: int

    def view(self) -> dict[str, object]:
        target = self.link.target
        return {
            "id": self.link.id,
            "datasource": self.link.datasource,
            "type": target.type,
            "server": target.server,
            "database": target.database,
            "tls": target.tls,
            "ca_pem": target.ca_pem is not None,  # whether one is fixed; PEMs are long
            "created_by": self.link.created_by,
            "created_at": self.created_at,
            "expires_at": self.link.expires_at.isoformat(),
            "tests_used": self.tests_used,
            "tests_allowed": ENTRY_LINK_TESTS,
        }


EntryLinkState = Literal["unknown", "used", "revoked", "expired"]
_CLOSED = {
    "used": "this entry link was already used (it works once); ask for a new one",
    "revoked": "this entry link was revoked; ask for a new one",
    "expired": "this entry link has expired; ask for a new one",
}


class EntryLinkClosedError(AccessDeniedError):
    """A link secret that opens nothing, and why.

    Only a holder of a real link's secret (256 random bits) can learn that
    it was used, revoked or expired; any other secret is ``unknown``, so the
    difference tells a guesser nothing, and tells the person who received the
    link what happened.
    """

    def __init__(
        self, state: EntryLinkState, link: EntryLink | None = None, closed_at: str | None = None
    ) -> None:
        super().__init__(_CLOSED.get(state, _LINK_REFUSED))
        self.state = state
        self.link = link
        self.closed_at = closed_at


class AccessGrants:
    """API tokens and entry links of one opened gateway vault."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._store = gateway.store
        self._audit = gateway.audit

    # -- API tokens ---------------------------------------------------------

    def create_token(self, name: str, role: str, *, caller: ActingCaller | None = None) -> str:
        """A new token (returned once, never stored in clear) acting as ``role``.

        A ``caller`` (the page's admin) is authorized inside the write that makes it."""
        check_datasource_name(name)  # the same safe character set
        checked_role = parse_role(role)
        token, token_hash = new_bearer_secret(self._gateway.context.random, TOKEN_PREFIX)
        with self._managing_tokens(name, caller):
            if self._store.rows("SELECT 1 FROM api_tokens WHERE name = ?", [name]):
                # Revoked tokens keep their names: the trail's entries stay unambiguous.
                raise ConflictError(
                    f"a token named {name!r} exists (live or revoked); pick another name"
                )
            self._store.execute(
                "INSERT INTO api_tokens (name, role, token_hash, created_by, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [name, checked_role, token_hash, self._gateway.context.actor, self._now()],
            )
            self._gateway.rows.reseal("api_tokens", name)
            self._audit.record("token.created", name, role=checked_role)
        return token

    def revoke_token(self, name: str, *, caller: ActingCaller | None = None) -> None:
        """Revoke the live token ``name``; ``NotFoundError`` if there is none."""
        with self._managing_tokens(name, caller):
            if not self._store.rows(
                "SELECT 1 FROM api_tokens WHERE name = ? AND revoked_at IS NULL", [name]
            ):
                raise NotFoundError(f"no live token named {name!r}; see: gwvault tokens list")
            self._store.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE name = ?", [self._now(), name]
            )
            self._gateway.rows.reseal("api_tokens", name)
            self._audit.record("token.revoked", name)

    @contextlib.contextmanager
    def _managing_tokens(self, name: str, caller: ActingCaller | None) -> Iterator[None]:
        """A write in which ``caller`` (if any) is authorized to manage tokens; a
        refusal rolls it back and is recorded after, on its own."""
        try:
            with self._store.write():
                if caller is not None:
                    caller.authorize(self._gateway, "users.manage")
                yield
        except AccessDeniedError as e:
            self._audit.record(
                "access.refused", name, "refused", refused_action="users.manage",
                reason=str(e)[:200],
            )  # fmt: skip
            raise

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
        self,
        datasource: str,
        target: DataSource,
        lifetime: datetime.timedelta,
        caller: ActingCaller | None = None,
    ) -> tuple[str, EntryLink]:
        """A single-use secret for entering ``datasource``'s credential, sealed for
        ``target`` only, and the link.  The caller validates ``target``; a web
        ``caller`` is authorized again inside the write that makes the link."""
        check_datasource_name(datasource)
        if not datetime.timedelta(0) < lifetime <= LONGEST_ENTRY_LINK:
            raise InvalidInputError("an entry link expires within an hour (--expires 1m to 60m)")
        secret, link_hash = new_bearer_secret(self._gateway.context.random)
        expires_at = self._gateway.context.clock() + lifetime
        actor = self._gateway.context.actor
        link = EntryLink(str(uuid.uuid4()), datasource, expires_at, target, actor)
        with self._store.write():
            if caller is not None:
                caller.authorize(self._gateway, "entry_links.manage")
            self._store.execute(
                "INSERT INTO entry_links (id, datasource, link_hash, created_by, created_at,"
                " expires_at, type, server, database, tls, ca_pem)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [link.id, datasource, link_hash, actor, self._now(),
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

    def open_entry_links(self, caller: ActingCaller | None = None) -> list[OpenEntryLink]:
        """The links that still open the entry page (unused, unrevoked, unexpired),
        soonest to expire first; never their secrets (only hashes are stored).

        ``TamperedRowError`` if a row was written outside gwvault."""
        with self._refusals_recorded(), self._store.reading():  # a web caller decided in it
            if caller is not None:
                caller.authorize(self._gateway, "entry_links.manage")
            rows = self._store.rows(
                f"SELECT created_at, {self._gateway.rows.columns('entry_links')}"  # noqa: S608 - fixed columns
                " FROM entry_links WHERE used_at IS NULL",
                [],
            )
            found, now = [], self._gateway.context.clock()
            for row in rows:
                try:
                    link = self._checked_link(row)
                except EntryLinkClosedError:
                    continue  # from before links named their target: not honoured
                if link.expires_at > now:
                    found.append(OpenEntryLink(link, row["created_at"], int(row["tests_used"])))
        return sorted(found, key=lambda open_link: (open_link.link.expires_at, open_link.link.id))

    def revoke_entry_link(self, link_id: str, caller: ActingCaller | None = None) -> EntryLink:
        """Close the open link ``link_id`` so that it opens nothing, and record it.

        ``NotFoundError`` when no open link has that id (unknown, used, revoked
        or expired); ``InvalidInputError`` when ``link_id`` is not a link id.
        """
        checked_id = check_entry_link_id(link_id)
        with self._refusals_recorded(), self._store.write():
            if caller is not None:
                caller.authorize(self._gateway, "entry_links.manage")
            try:
                link = self.live_entry_link(checked_id)
            except EntryLinkClosedError as e:
                raise NotFoundError(
                    f"no open entry link has the id {checked_id} (it is {e.state});"
                    " see: gwvault entry-link list"
                ) from None
            self._store.execute(
                "UPDATE entry_links SET used_at = ? WHERE id = ? AND used_at IS NULL",
                [self._now(), link.id],
            )
            self._gateway.rows.reseal("entry_links", link.id)
            self._audit.record("entry-link.revoked", link.datasource, link_id=link.id)
        return link

    def entry_link(self, secret: str) -> EntryLink:
        """The live link for ``secret``; ``EntryLinkClosedError`` if unknown, used,
        revoked or expired."""
        rows = self._store.rows(
            f"SELECT {self._gateway.rows.columns('entry_links')} FROM entry_links"  # noqa: S608 - fixed columns
            " WHERE link_hash = ?",
            [bearer_hash(secret)],
        )
        return self._live(rows)

    def live_entry_link(self, link_id: str) -> EntryLink:
        """The link ``link_id`` if it is still unused and unexpired; ``EntryLinkClosedError``
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
            raise EntryLinkClosedError("unknown")
        link = self._checked_link(rows[0])
        if link.expires_at <= self._gateway.context.clock():
            # Anyone holding the old URL can cause this: rate-limited per address.
            self._audit.record_unauthenticated(
                "entry-link.expired", link.datasource, "refused", link_id=link.id
            )
            raise EntryLinkClosedError("expired", link)
        return link

    def _checked_link(self, row: dict[str, Any]) -> EntryLink:
        """The link of a row, its seal and its currency checked; ``EntryLinkClosedError``
        when it is used or revoked (or from before links named their target)."""
        self._gateway.rows.check("entry_links", row)  # a planted link opens nothing
        # A used or revoked link's older row (used_at still empty), put back,
        # opens nothing either.
        closing = ("entry-link.used", "entry-link.revoked")
        self._gateway.rows.check_current(
            "entry_links", row["id"], row["datasource"], closing,
            lambda _action, _details: row["used_at"] is not None, link_id=row["id"],
        )  # fmt: skip
        if row["type"] is None:
            # Made before links named their target (schema 4): it could be used
            # against any server, so it is not honoured.
            raise EntryLinkClosedError("unknown")
        link = EntryLink(
            id=row["id"],
            datasource=row["datasource"],
            expires_at=datetime.datetime.fromisoformat(row["expires_at"]),
            target=DataSource(
                type=parse_data_source_type(row["type"]),
                server=row["server"],
                database=row["database"],
                tls=parse_tls_mode(row["tls"]),
                ca_pem=row["ca_pem"],
            ),
            created_by=row["created_by"],
        )
        if row["used_at"] is not None:
            # Revoking closes a link the way using it does (used_at, schema 2);
            # the MACed trail says which it was.  A pruned trail: "used".
            latest = self._gateway.rows.latest_audited(
                row["datasource"], closing, link_id=row["id"]
            )
            revoked = latest is not None and latest[0] == "entry-link.revoked"
            raise EntryLinkClosedError("revoked" if revoked else "used", link, row["used_at"])
        return link

    def _now(self) -> str:
        return self._gateway.context.now_iso()

    @contextlib.contextmanager
    def _refusals_recorded(self) -> Iterator[None]:
        """Record a row refused inside the transaction this wraps, after its rollback
        (a refusal is recorded where no transaction would take it back with it)."""
        try:
            yield
        except TamperedRowError as e:
            record_refusal(self._audit, e)
            raise


def check_entry_link_id(text: str) -> str:
    """An entry link's id as ``entry-link list`` shows it; ``InvalidInputError`` otherwise
    (without repeating what was given: it could be anything, of any length)."""
    with contextlib.suppress(ValueError):
        if len(text) == 36:
            return str(uuid.UUID(text))
    raise InvalidInputError(
        "an entry link id looks like 0b7c6a1e-2f4d-4c59-9a51-8d3e0f6b7a21;"
        " see: gwvault entry-link list"
    )
