"""One page of the credential list, by name: what the API and the page show.

Keyset paging: a page starts after (or ends before) a data-source name, so
each page is an index range of at most ``MAX_PAGE`` rows, however many
credentials the vault holds (the whole list took 2.1 s at 100k).  The cursor
is a name, checked as a name, so a hostile value is refused, never a query.
Every row on the page has its seal checked, as ``CredentialService.list`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent_keys.errors import InvalidInputError
from vault.audit.log import bounded_int
from vault.gateway import Gateway
from vault.names import check_datasource_name
from vault.store.records import CredentialRecord

DEFAULT_PAGE = 100
MAX_PAGE = 1000


@dataclass(frozen=True)
class CredentialPageQuery:
    """Which page: names after ``after``, or just before ``before``; ``limit`` at most;
    of the credentials not deleted, or (``deleted``) of the deleted ones."""

    after: str | None = None
    before: str | None = None
    limit: int = DEFAULT_PAGE
    deleted: bool = False

    @classmethod
    def parse(
        cls,
        *,
        after: str | None = None,
        before: str | None = None,
        limit: str | int | None = None,
        deleted: str | None = None,
    ) -> CredentialPageQuery:
        """Check a page request from a query string; ``InvalidInputError`` if bad."""
        if after is not None and before is not None:
            raise InvalidInputError("give after or before, not both")
        for cursor in (after, before):
            if cursor is not None:
                check_datasource_name(cursor)
        size = bounded_int(limit, "limit", 1, MAX_PAGE) or DEFAULT_PAGE
        return cls(after, before, size, _flag(deleted, "deleted"))


@dataclass(frozen=True)
class CredentialPage:
    """Credentials in name order, and the cursors of the pages beside it (None: none)."""

    records: list[CredentialRecord]
    next_after: str | None
    previous_before: str | None


def credential_page(gateway: Gateway, query: CredentialPageQuery) -> CredentialPage:
    """The page ``query`` asks for, its rows' seals checked (``TamperedRowError``)."""
    store = gateway.store
    with store.reading():  # the page and its neighbours from one snapshot
        records = store.credential_page(
            after=query.after, before=query.before, limit=query.limit, deleted=query.deleted
        )
        if not records:
            return CredentialPage([], None, None)
        first, last = records[0].name, records[-1].name
        following = store.has_credential_beyond(last, after=True, deleted=query.deleted)
        preceding = store.has_credential_beyond(first, after=False, deleted=query.deleted)
    for record in records:
        gateway.rows.check("credentials", record.sealed_row())
    return CredentialPage(records, last if following else None, first if preceding else None)


def _flag(value: str | None, name: str) -> bool:
    """A query string's boolean: exactly ``true`` or ``false`` (absent: false)."""
    if value is None or value == "false":
        return False
    if value == "true":
        return True
    raise InvalidInputError(f"{name} is true or false")
