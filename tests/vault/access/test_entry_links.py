"""Entry links an admin lists and revokes: never a secret shown, revoking closes the
link inside its transaction, and whoever holds a closed link learns why."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from agent_keys.errors import AccessDeniedError, InvalidInputError, NotFoundError
from agent_keys.secret import Secret
from tests.vault.access.test_accounts import PASSWORD, START, Clock
from tests.vault.access.test_row_seal import _put_back, _row_copy
from vault.access.accounts import Accounts
from vault.access.bearer_secrets import bearer_hash
from vault.access.callers import Caller, Grant
from vault.access.grants import AccessGrants, EntryLinkClosedError
from vault.access.row_seal import REFUSED_ACTION, TamperedRowError
from vault.context import RequestContext
from vault.format.data_source import DataSource
from vault.gateway import Gateway

SALES = DataSource("postgresql", "db.example:5432", "sales", "verify-ca", None)
HR = DataSource("mysql", "hr.example:3306")
QUARTER = datetime.timedelta(minutes=15)


@pytest.fixture
def grants(vault: Gateway) -> AccessGrants:
    return AccessGrants(vault)


def _audited(vault: Gateway, action: str) -> list[dict[str, object]]:
    return [json.loads(e.details) for e in vault.store.audit_events() if e.action == action]


def test_the_list_shows_open_links_and_never_a_secret(
    grants: AccessGrants, vault: Gateway, clock: Clock
) -> None:
    sales_secret, sales = grants.create_entry_link("sales", SALES, QUARTER)
    used_secret, used = grants.create_entry_link("used", HR, QUARTER)
    with vault.store.write():
        grants.consume_entry_link(used)
    _, soon = grants.create_entry_link("hr", HR, datetime.timedelta(minutes=5))
    _, gone = grants.create_entry_link("gone", HR, datetime.timedelta(minutes=1))
    clock.now += datetime.timedelta(minutes=2)  # "gone" has expired

    shown = [open_link.view() for open_link in grants.open_entry_links()]

    assert [row["id"] for row in shown] == [soon.id, sales.id]  # soonest to expire first
    assert shown[1] == {
        "id": sales.id, "datasource": "sales", "type": "postgresql",
        "server": "db.example:5432", "database": "sales", "tls": "verify-ca", "ca_pem": False,
        "created_by": "os:admin", "created_at": START.isoformat(),
        "expires_at": (START + QUARTER).isoformat(), "tests_used": 0, "tests_allowed": 5,
    }  # fmt: skip
    text = repr(shown)
    for secret in (sales_secret, used_secret):
        assert secret not in text and bearer_hash(secret).hex() not in text
    assert gone.id not in text


def test_revoking_closes_the_link_and_is_audited(grants: AccessGrants, vault: Gateway) -> None:
    secret, link = grants.create_entry_link("sales", SALES, QUARTER)

    revoked = grants.revoke_entry_link(link.id)

    assert (revoked.id, revoked.datasource) == (link.id, "sales")
    with pytest.raises(EntryLinkClosedError, match="was revoked") as closed:
        grants.entry_link(secret)
    assert closed.value.state == "revoked"
    assert closed.value.link is not None and closed.value.link.created_by == "os:admin"
    assert grants.open_entry_links() == []
    assert _audited(vault, "entry-link.revoked") == [{"link_id": link.id}]
    # A put of the credential racing the revocation finds the link closed inside its write.
    with pytest.raises(AccessDeniedError), vault.store.write():
        grants.consume_entry_link(link)


@pytest.mark.parametrize("state", ["used", "revoked", "expired", "unknown"])
def test_only_an_open_link_can_be_revoked(
    grants: AccessGrants, vault: Gateway, clock: Clock, state: str
) -> None:
    _, link = grants.create_entry_link("sales", SALES, QUARTER)
    link_id = link.id
    if state == "used":
        with vault.store.write():
            grants.consume_entry_link(link)
    elif state == "revoked":
        grants.revoke_entry_link(link.id)
    elif state == "expired":
        clock.now += QUARTER
    else:
        link_id = "0b7c6a1e-2f4d-4c59-9a51-8d3e0f6b7a21"
    before = len(vault.store.audit_events())

    with pytest.raises(NotFoundError, match=rf"no open entry link .* \(it is {state}\)"):
        grants.revoke_entry_link(link_id)

    actions = [e.action for e in vault.store.audit_events()[before:]]
    assert "entry-link.revoked" not in actions


@pytest.mark.parametrize(
    "odd", ["", "sales", "x" * 10_000, "zzzzzzzz-2f4d-4c59-9a51-8d3e0f6b7a21", "'; --", "\x00"]
)
def test_a_malformed_id_is_one_clear_error_that_repeats_nothing(
    grants: AccessGrants, vault: Gateway, odd: str
) -> None:
    _, link = grants.create_entry_link("sales", SALES, QUARTER)
    before = len(vault.store.audit_events())
    with pytest.raises(InvalidInputError, match="an entry link id looks like") as refused:
        grants.revoke_entry_link(odd)
    assert not odd or odd not in str(refused.value)
    assert len(vault.store.audit_events()) == before
    assert [o.link.id for o in grants.open_entry_links()] == [link.id]


def test_a_closed_link_says_why_to_whoever_holds_it(
    grants: AccessGrants, vault: Gateway, clock: Clock
) -> None:
    used_secret, used = grants.create_entry_link("sales", SALES, QUARTER)
    with vault.store.write():
        grants.consume_entry_link(used)
    expired_secret, _ = grants.create_entry_link("hr", HR, datetime.timedelta(minutes=1))
    clock.now += datetime.timedelta(minutes=1)
    states = {}
    for secret in (used_secret, expired_secret, "q5Yl0Zr3bKc2VhX9nU8tWm1sPa4oEi7dRf6gJy0TzLw"):
        with pytest.raises(EntryLinkClosedError) as closed:
            grants.entry_link(secret)
        states[closed.value.state] = closed.value
    assert set(states) == {"used", "expired", "unknown"}
    assert states["used"].link is not None and states["used"].link.datasource == "sales"
    assert states["used"].closed_at == START.isoformat()
    assert states["unknown"].link is None  # nothing about any link for a made-up secret
    assert "unknown, expired or already used" in str(states["unknown"])


def test_a_revoked_links_older_row_put_back_opens_nothing(data_dir: Path, clock: Clock) -> None:
    context = RequestContext(actor="os:admin", channel="cli", clock=clock)
    with Gateway.open(data_dir, context) as vault:
        secret, link = AccessGrants(vault).create_entry_link("sales", SALES, QUARTER)
    copy = _row_copy(data_dir, "entry_links")
    with Gateway.open(data_dir, context) as vault:
        AccessGrants(vault).revoke_entry_link(link.id)
    _put_back(data_dir, "entry_links", copy)
    with Gateway.open(data_dir, context) as vault:
        refusals = []
        for attempt in (
            lambda: AccessGrants(vault).open_entry_links(),
            lambda: AccessGrants(vault).revoke_entry_link(link.id),
            lambda: AccessGrants(vault).entry_link(secret),
        ):
            with pytest.raises(TamperedRowError):
                attempt()
            # Each refusal is recorded, also where a transaction was rolled back.
            refusals.append(len(_audited(vault, REFUSED_ACTION)))
        assert refusals == [1, 2, 3]


def session_caller(vault: Gateway, name: str, role: str) -> tuple[Caller, Gateway]:
    accounts = Accounts(vault)
    accounts.add_user(name, role, Secret.from_text(PASSWORD))
    principal = accounts.sign_in(name, Secret.from_text(PASSWORD))
    cookie, _ = accounts.open_session(principal)
    context = RequestContext(actor=principal.actor, channel="web", clock=vault.context.clock)
    return Caller(principal, Grant("session", bearer_hash(cookie))), vault.acting_as(context)


def test_a_web_caller_is_decided_inside_the_transaction(vault: Gateway) -> None:
    admin, as_admin = session_caller(vault, "ada", "admin")
    creator, as_creator = session_caller(vault, "cleo", "creator")

    _, link = AccessGrants(as_admin).create_entry_link("sales", SALES, QUARTER, admin)
    assert link.created_by == "user:ada"
    assert [o.link.id for o in AccessGrants(as_admin).open_entry_links(admin)] == [link.id]
    with pytest.raises(AccessDeniedError):
        AccessGrants(as_creator).create_entry_link("hr", HR, QUARTER, creator)
    with pytest.raises(AccessDeniedError):
        AccessGrants(as_creator).open_entry_links(creator)
    with pytest.raises(AccessDeniedError):
        AccessGrants(as_creator).revoke_entry_link(link.id, creator)

    # Another admin, so ada is not the last one (the vault keeps an admin).
    Accounts(vault).add_user("bea", "admin", Secret.from_text(PASSWORD))
    Accounts(vault).remove_user("ada")  # her session ends: what she began is refused
    with pytest.raises(AccessDeniedError):
        AccessGrants(as_admin).revoke_entry_link(link.id, admin)
    with pytest.raises(AccessDeniedError):
        AccessGrants(as_admin).create_entry_link("hr", HR, QUARTER, admin)
    assert [o.link.id for o in AccessGrants(vault).open_entry_links()] == [link.id]
    assert "entry-link.revoked" not in [e.action for e in vault.store.audit_events()]
