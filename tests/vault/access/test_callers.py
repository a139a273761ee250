"""Entry links, decided inside the write that acts for them (trust review, items 3 and 7).

A link names one target the admin chose; its holder may seal for, test and store
that target only, test it a few times at most, and nothing counts once the link
has expired or been used, however early the request began.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from agent_keys.errors import AccessDeniedError, StorageError
from agent_keys.secret import Secret
from tests.sealing import seal
from tests.vault.access.test_accounts import START, Clock
from tests.vault.store.old_schemas import rewind_schema
from vault.access.callers import Caller, Grant
from vault.access.grants import ENTRY_LINK_TESTS, AccessGrants, EntryLink
from vault.context import RequestContext
from vault.credentials import CredentialService
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway

NAME = "hr-db"
TARGET = DataSource("postgresql", "127.0.0.1:1", "hr")  # nothing listens on port 1
LOGIN = CredentialPayload("basic", "alice", Secret.from_text("alice's pa55word"))


def _link(vault: Gateway, target: DataSource = TARGET) -> tuple[EntryLink, Caller]:
    secret, _ = AccessGrants(vault).create_entry_link(NAME, target, datetime.timedelta(minutes=15))
    link = AccessGrants(vault).entry_link(secret)  # what the edge checks when headers arrive
    return link, Caller(link.principal(), Grant("entry-link", link.id))


def _as_link(vault: Gateway, caller: Caller) -> CredentialService:
    context = RequestContext(actor=caller.principal.actor, channel="web", clock=vault.context.clock)
    return CredentialService(vault.acting_as(context), caller)


def _blob(vault: Gateway, target: DataSource = TARGET) -> str:
    return seal(vault.certificate(), NAME, target, LOGIN, issued_at=int(START.timestamp()))


def test_a_link_that_expires_while_its_request_runs_stores_nothing(
    vault: Gateway, clock: Clock
) -> None:
    link, caller = _link(vault)
    clock.now += datetime.timedelta(minutes=16)  # the body arrived a minute too late
    grants = AccessGrants(vault)
    with pytest.raises(AccessDeniedError, match="expired"):
        _as_link(vault, caller).put_sealed(
            NAME, TARGET, _blob(vault), also=lambda: grants.consume_entry_link(link)
        )
    assert vault.store.credential(NAME) is None


def test_consuming_a_link_checks_its_expiry_too(vault: Gateway, clock: Clock) -> None:
    link, _ = _link(vault)
    clock.now += datetime.timedelta(minutes=16)
    with pytest.raises(AccessDeniedError), vault.store.write():
        AccessGrants(vault).consume_entry_link(link)


def test_a_link_stores_and_tests_its_own_target_only(vault: Gateway) -> None:
    elsewhere = DataSource("mysql", "10.0.0.9:3306")
    _, caller = _link(vault)
    service = _as_link(vault, caller)
    with pytest.raises(AccessDeniedError, match="one server only"):
        service.test_sealed(NAME, elsewhere, _blob(vault, elsewhere))
    with pytest.raises(AccessDeniedError, match="one server only"):
        service.put_sealed(NAME, elsewhere, _blob(vault, elsewhere))
    assert vault.store.credential(NAME) is None
    stored = service.put_sealed(NAME, TARGET, _blob(vault))
    assert stored.record.binding.server == TARGET.server


def test_a_link_makes_a_few_tests_at_most(vault: Gateway) -> None:
    _, caller = _link(vault)
    service = _as_link(vault, caller)
    for _ in range(ENTRY_LINK_TESTS):
        assert service.test_sealed(NAME, TARGET, _blob(vault), timeout=2).ok is False
    with pytest.raises(AccessDeniedError, match=f"made its {ENTRY_LINK_TESTS} connection tests"):
        service.test_sealed(NAME, TARGET, _blob(vault), timeout=2)
    actions = [e.action for e in vault.store.audit_events()]
    assert actions.count("credential.tested") == ENTRY_LINK_TESTS
    assert "entry-link.tests-used-up" not in actions  # refused inside the write: rolled back
    assert actions[-1] == "access.refused"


def test_a_link_from_before_links_named_their_target_is_not_honoured(
    data_dir: Path, clock: Clock
) -> None:
    context = RequestContext(actor="os:admin", channel="cli", clock=clock)
    with Gateway.open(data_dir, context) as vault:
        _, caller = _link(vault)
        master_key = vault.master_key
    rewind_schema(data_dir / "vault.db", 2, master_key)  # a link made by gwvault of schema 2
    with Gateway.open(data_dir, context) as upgraded:
        with pytest.raises(AccessDeniedError, match="unknown, expired or already used"):
            _as_link(upgraded, caller).put_sealed(NAME, TARGET, _blob(upgraded))
        assert upgraded.store.credential(NAME) is None


def test_an_authorization_outside_a_transaction_is_a_bug_not_a_pass(vault: Gateway) -> None:
    _, caller = _link(vault)
    with pytest.raises(StorageError, match="inside the transaction"):
        caller.authorize(vault, "credential.write", datasource=NAME)
