"""Managing users: the vault keeps an admin, role changes are sealed and audited,
a new password ends the other sessions, and a caller is authorized inside the write.

Contract tests: each runs on SQLite and on PostgreSQL, where two members'
writes follow one another through the store's write lock.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agent_keys.errors import AccessDeniedError, InvalidInputError
from agent_keys.secret import Secret
from tests.vault.access.test_accounts import PASSWORD, Clock
from vault.access.accounts import Accounts, LastAdminError
from vault.access.bearer_secrets import bearer_hash
from vault.access.callers import Caller, Grant
from vault.access.row_seal import TamperedRowError
from vault.context import RequestContext
from vault.format.strict_json import parse_json_object
from vault.gateway import Gateway

pytestmark = pytest.mark.contract
NEW_PASSWORD = "a newer sign-in phrase 5"


def _open(data_dir: Path, clock: Clock, actor: str = "os:admin") -> Gateway:
    return Gateway.open(data_dir, RequestContext(actor=actor, channel="cli", clock=clock))


@pytest.fixture
def accounts(data_dir: Path, clock: Clock) -> Accounts:
    accounts = Accounts(_open(data_dir, clock))
    accounts.add_user("ada", "admin", Secret.from_text(PASSWORD))
    accounts.add_user("cleo", "creator", Secret.from_text(PASSWORD))
    return accounts


def _roles(accounts: Accounts) -> dict[str, str]:
    return {row["name"]: row["role"] for row in accounts.users()}


def _events(accounts: Accounts, action: str) -> list[tuple[str | None, str, dict[str, Any]]]:
    return [(e.target, e.outcome, parse_json_object(e.details))
            for e in accounts._gateway.store.audit_events() if e.action == action]  # fmt: skip


def _as_user(accounts: Accounts, name: str) -> tuple[Accounts, bytes]:
    """``accounts`` acting for a signed-in ``name``, and its session id's hash."""
    principal = accounts.sign_in(name, Secret.from_text(PASSWORD))
    cookie, _ = accounts.open_session(principal)
    caller = Caller(principal, Grant("session", bearer_hash(cookie)))
    return Accounts(accounts._gateway, caller), bearer_hash(cookie)


def test_the_last_admin_can_be_neither_removed_nor_demoted(accounts: Accounts) -> None:
    before = _roles(accounts)
    with pytest.raises(LastAdminError, match=r"^ada is the last admin; add another admin first$"):
        accounts.remove_user("ada")
    with pytest.raises(LastAdminError, match="last admin"):
        accounts.set_role("ada", "auditor")
    assert _roles(accounts) == before
    refused = _events(accounts, "user.change-refused")
    assert [(target, outcome, details["change"], details["reason"])
            for target, outcome, details in refused] == [
        ("ada", "refused", "remove", "last-admin"),
        ("ada", "refused", "set-role", "last-admin"),
    ]  # fmt: skip
    assert _events(accounts, "user.removed") == []
    accounts.sign_in("ada", Secret.from_text(PASSWORD))  # the refusals left the row as it was


def test_an_admin_may_go_while_another_remains(accounts: Accounts) -> None:
    assert accounts.is_last_admin("ada") and not accounts.is_last_admin("cleo")
    assert accounts.set_role("cleo", "admin") == "creator"
    assert not accounts.is_last_admin("ada")
    assert accounts.set_role("cleo", "admin") == "admin"  # no change, nothing recorded
    accounts.set_role("ada", "auditor")
    with pytest.raises(LastAdminError):
        accounts.remove_user("cleo")
    accounts.remove_user("ada")
    assert _roles(accounts) == {"cleo": "admin"}
    [(target, outcome, details)] = _events(accounts, "user.role-changed")[:1]
    assert (target, outcome, details["role"], details["previous_role"]) == (
        "cleo", "ok", "admin", "creator"
    )  # fmt: skip


def test_a_planted_admin_row_does_not_count_as_another_admin(accounts: Accounts) -> None:
    store = accounts._gateway.store
    store.execute(
        "INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
        ["mallory", "admin", "$argon2id$planted", "2026-11-23T12:00:00+00:00"],
    )
    with pytest.raises(LastAdminError):
        accounts.remove_user("ada")
    assert accounts._gateway.store.rows("SELECT 1 FROM users WHERE name = 'ada'", [])


def test_two_admins_removing_each_other_at_once_leave_one(
    accounts: Accounts, data_dir: Path, clock: Clock
) -> None:
    accounts.set_role("cleo", "admin")
    other = Accounts(_open(data_dir, clock))  # a second connection (on PostgreSQL, a member)
    started, outcome = threading.Event(), list[BaseException | None]()

    def remove_ada_meanwhile() -> None:
        started.set()
        try:
            other.remove_user("ada")
            outcome.append(None)
        except LastAdminError as e:
            outcome.append(e)

    thread = threading.Thread(target=remove_ada_meanwhile)
    with accounts._gateway.store.write():
        accounts.remove_user("cleo")  # joins this write: its lock is held until it ends
        thread.start()
        started.wait(5)
        time.sleep(0.3)  # the other removal is now waiting for the write lock
    thread.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], LastAdminError)
    assert _roles(accounts) == {"ada": "admin"}


def test_a_role_change_is_sealed_and_an_older_row_put_back_is_refused(
    accounts: Accounts, data_dir: Path
) -> None:
    store = accounts._gateway.store
    [old] = store.rows("SELECT role, mac FROM users WHERE name = 'cleo'", [])
    accounts.set_role("cleo", "auditor")
    assert accounts.sign_in("cleo", Secret.from_text(PASSWORD)).role == "auditor"
    # The creator's row, with its valid old seal, put back from a copy of the file.
    put_back = "UPDATE users SET role = ?, mac = ? WHERE name = 'cleo'"
    store.execute(put_back, [old["role"], old["mac"]])
    with pytest.raises(AccessDeniedError):
        accounts.sign_in("cleo", Secret.from_text(PASSWORD))
    with pytest.raises(TamperedRowError):
        accounts.set_role("cleo", "creator")
    assert _events(accounts, "integrity.row-refused")


def test_a_new_password_ends_the_other_sessions_only(accounts: Accounts) -> None:
    principal = accounts.sign_in("cleo", Secret.from_text(PASSWORD))
    elsewhere, _ = accounts.open_session(principal)
    as_cleo, here = _as_user(accounts, "cleo")
    with pytest.raises(AccessDeniedError, match="current password is not right"):
        as_cleo.change_own_password(Secret.from_text("wrong"), Secret.from_text(NEW_PASSWORD))
    with pytest.raises(InvalidInputError):
        as_cleo.change_own_password(Secret.from_text(PASSWORD), Secret.from_text("short"))
    accounts.sign_in("cleo", Secret.from_text(PASSWORD))  # nothing changed yet
    as_cleo.change_own_password(
        Secret.from_text(PASSWORD), Secret.from_text(NEW_PASSWORD), keep_session=here
    )
    assert accounts.session(elsewhere) is None
    assert accounts.session_by_hash(here) is not None
    assert accounts.sign_in("cleo", Secret.from_text(NEW_PASSWORD)).name == "cleo"
    [*_, (target, _, details)] = _events(accounts, "user.password-changed")
    assert target == "cleo" and details["role"] == "creator"


def test_a_wrong_current_password_counts_like_a_failed_sign_in(accounts: Accounts) -> None:
    as_cleo, _ = _as_user(accounts, "cleo")
    with pytest.raises(AccessDeniedError):
        as_cleo.change_own_password(Secret.from_text("guess"), Secret.from_text(NEW_PASSWORD))
    [row] = [row for row in accounts.users() if row["name"] == "cleo"]
    assert row["failed_signins"] == 1


def test_a_caller_without_the_right_changes_nothing_and_is_recorded(accounts: Accounts) -> None:
    as_cleo, _ = _as_user(accounts, "cleo")
    before = _roles(accounts)
    with pytest.raises(AccessDeniedError):
        as_cleo.set_role("cleo", "admin")
    with pytest.raises(AccessDeniedError):
        as_cleo.remove_user("ada")
    with pytest.raises(AccessDeniedError):
        as_cleo.add_user("eve", "admin", Secret.from_text(PASSWORD))
    with pytest.raises(AccessDeniedError):
        as_cleo.set_password("ada", Secret.from_text(NEW_PASSWORD))
    assert _roles(accounts) == before
    refused = _events(accounts, "access.refused")
    assert [target for target, _, _ in refused] == ["cleo", "ada", "eve", "ada"]


def test_an_admin_demoted_meanwhile_can_no_longer_manage_users(accounts: Accounts) -> None:
    accounts.set_role("cleo", "admin")
    as_cleo, _ = _as_user(accounts, "cleo")  # signed in as an admin ...
    accounts.set_role("cleo", "auditor")  # ... and demoted before the request acts
    with pytest.raises(AccessDeniedError):
        as_cleo.remove_user("ada")
    assert "ada" in _roles(accounts)


@pytest.mark.parametrize(
    "name",
    ["e\u0301ve", ".", "..", "ada\u200b", "\u202eada", " ada", "a" * 65, "tab\tname"],
    ids=["decomposed", "dot", "dotdot", "zero-width", "rtl-override", "outer-space", "long", "tab"],
)
def test_odd_user_names_are_refused(accounts: Accounts, name: str) -> None:
    with pytest.raises(InvalidInputError, match="user name"):
        accounts.add_user(name, "creator", Secret.from_text(PASSWORD))
    assert set(_roles(accounts)) == {"ada", "cleo"}


def test_a_name_in_another_script_is_a_user_of_its_own(accounts: Accounts) -> None:
    accounts.add_user("\u00e9ve/ops", "auditor", Secret.from_text(PASSWORD))
    assert accounts.sign_in("\u00e9ve/ops", Secret.from_text(PASSWORD)).role == "auditor"
