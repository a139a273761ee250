"""API tokens and entry links: shown once, stored hashed, revocable, single-use, short-lived."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from agent_keys.errors import AccessDeniedError, ConflictError, InvalidInputError, NotFoundError
from tests.vault.access.test_accounts import START, Clock
from vault.access.grants import AccessGrants
from vault.context import RequestContext
from vault.format.data_source import DataSource
from vault.gateway import Gateway

SALES = DataSource("postgresql", "db.example:5432", "sales")


@pytest.fixture
def grants(data_dir: Path, clock: Clock) -> AccessGrants:
    return AccessGrants(
        Gateway.open(data_dir, RequestContext(actor="os:admin", channel="cli", clock=clock))
    )


def test_a_token_acts_until_revoked_and_is_never_stored(
    grants: AccessGrants, data_dir: Path
) -> None:
    token = grants.create_token("etl", "creator")
    assert token.startswith("gwv_") and len(token) > 40
    assert token.encode() not in (data_dir / "vault.db").read_bytes()
    principal = grants.principal_for_token(token)
    assert principal is not None and (principal.actor, principal.role) == ("token:etl", "creator")
    other_last = "B" if token.endswith("A") else "A"  # a token one character away
    assert grants.principal_for_token(token[:-1] + other_last) is None
    assert grants.principal_for_token("not-a-token") is None
    with pytest.raises(ConflictError):
        grants.create_token("etl", "admin")
    grants.revoke_token("etl")
    assert grants.principal_for_token(token) is None
    with pytest.raises(NotFoundError):
        grants.revoke_token("etl")
    assert grants.tokens()[0]["revoked_at"] is not None


def test_an_entry_link_is_single_use_and_expires(grants: AccessGrants, clock: Clock) -> None:
    secret, link = grants.create_entry_link("sales", SALES, datetime.timedelta(minutes=15))
    assert link.expires_at == START + datetime.timedelta(minutes=15)
    assert grants.entry_link(secret).datasource == "sales"
    with grants._store.write():
        grants.consume_entry_link(link)
    with pytest.raises(AccessDeniedError, match="already used"):
        grants.entry_link(secret)
    with pytest.raises(AccessDeniedError), grants._store.write():
        grants.consume_entry_link(link)

    secret, _ = grants.create_entry_link("sales", SALES, datetime.timedelta(minutes=1))
    clock.now += datetime.timedelta(minutes=1)
    with pytest.raises(AccessDeniedError, match="expired"):
        grants.entry_link(secret)


@pytest.mark.parametrize("minutes", [0, -5, 61, 24 * 60])
def test_entry_links_live_at_most_an_hour(grants: AccessGrants, minutes: int) -> None:
    with pytest.raises(InvalidInputError, match="within an hour"):
        grants.create_entry_link("sales", SALES, datetime.timedelta(minutes=minutes))
