"""Web accounts: Argon2id hashes, sign-in lockout with backoff, server-side sessions."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path

import pytest

from agent_keys.errors import AccessDeniedError, ConflictError, InvalidInputError
from agent_keys.secret import Secret
from vault.access.accounts import FIRST_LOCK, FREE_FAILURES, SESSION_LIFETIME, Accounts
from vault.context import RequestContext
from vault.gateway import Gateway

START = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.UTC)
PASSWORD = "a long enough sign-in phrase 4"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime.datetime:
        return self.now


@pytest.fixture
def accounts(data_dir: Path, clock: Clock) -> Accounts:
    gateway = Gateway.open(data_dir, RequestContext(actor="test", channel="cli", clock=clock))
    accounts = Accounts(gateway)
    accounts.add_user("ada", "admin", Secret.from_text(PASSWORD))
    return accounts


def test_passwords_are_stored_as_argon2id_hashes_only(accounts: Accounts, data_dir: Path) -> None:
    assert PASSWORD.encode() not in (data_dir / "vault.db").read_bytes()
    [row] = accounts.users()
    assert "password_hash" not in row and row["role"] == "admin"


@pytest.mark.parametrize(("name", "role", "password", "error"), [
    ("bob", "creator", "short", InvalidInputError),
    ("bob", "root", PASSWORD, InvalidInputError),
    ("", "creator", PASSWORD, InvalidInputError),
    ("ada", "creator", PASSWORD, ConflictError),
])  # fmt: skip
def test_bad_users_are_refused(
    accounts: Accounts, name: str, role: str, password: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        accounts.add_user(name, role, Secret.from_text(password))
    assert [row["name"] for row in accounts.users()] == ["ada"]


def test_unknown_user_and_wrong_password_look_the_same(accounts: Accounts) -> None:
    with pytest.raises(AccessDeniedError) as unknown:
        accounts.sign_in("nobody", Secret.from_text(PASSWORD))
    with pytest.raises(AccessDeniedError) as wrong:
        accounts.sign_in("ada", Secret.from_text("wrong"))
    assert str(unknown.value) == str(wrong.value) == "wrong user name or password"
    assert accounts.sign_in("ada", Secret.from_text(PASSWORD)).actor == "user:ada"


def test_repeated_failures_lock_the_account_with_growing_backoff(
    accounts: Accounts, clock: Clock
) -> None:
    def fail() -> None:
        with pytest.raises(AccessDeniedError):
            accounts.sign_in("ada", Secret.from_text("wrong"))

    def right() -> Callable[[], object]:
        return lambda: accounts.sign_in("ada", Secret.from_text(PASSWORD))

    for _ in range(FREE_FAILURES):
        fail()
    with pytest.raises(AccessDeniedError, match=r"^wrong user name or password$"):
        right()()  # locked: even the right password is refused, in the same words
    clock.now += FIRST_LOCK + datetime.timedelta(seconds=1)
    fail()  # the sixth failure locks for twice as long
    clock.now += FIRST_LOCK + datetime.timedelta(seconds=1)
    with pytest.raises(AccessDeniedError, match=r"^wrong user name or password$"):
        right()()
    clock.now += FIRST_LOCK
    right()()  # unlocked, and the count starts again
    fail()
    right()()
    actions = [e.action for e in accounts._gateway.store.audit_events()]
    assert actions.count("user.locked") == 2
    assert actions.count("user.signin-failed") == FREE_FAILURES + 2
    assert "user.signin-refused" in actions


def test_sessions_expire_end_on_sign_out_and_on_a_new_password(
    accounts: Accounts, clock: Clock
) -> None:
    principal = accounts.sign_in("ada", Secret.from_text(PASSWORD))
    cookie, session = accounts.open_session(principal)
    assert accounts.session(cookie) == session
    assert accounts.session(cookie + "x") is None
    clock.now += SESSION_LIFETIME
    assert accounts.session(cookie) is None

    cookie, _ = accounts.open_session(principal)
    accounts.close_session(cookie)
    assert accounts.session(cookie) is None

    cookie, _ = accounts.open_session(principal)
    accounts.set_password("ada", Secret.from_text(PASSWORD + " new"))
    assert accounts.session(cookie) is None
    cookie, _ = accounts.open_session(principal)
    accounts.add_user("bea", "admin", Secret.from_text(PASSWORD))  # ada is not the last admin
    accounts.remove_user("ada")
    assert accounts.session(cookie) is None


@pytest.mark.parametrize(
    ("column", "stored"),
    [("locked_until", "not a time"), ("locked_until", "2026-11-23T12:00:00"),
     ("locked_until", "12"), ("failed_signins", "many")],
)  # fmt: skip
def test_a_lock_that_does_not_parse_locks_until_the_password_is_reset(
    accounts: Accounts, column: str, stored: str
) -> None:
    # The row is read back from the file: an edited lock fails closed, not with a 500.
    store = accounts._gateway.store
    store.execute(f"UPDATE users SET {column} = ? WHERE name = 'ada'", [stored])  # noqa: S608
    with pytest.raises(AccessDeniedError, match=r"^wrong user name or password$"):
        accounts.sign_in("ada", Secret.from_text(PASSWORD))
    accounts.set_password("ada", Secret.from_text(PASSWORD))
    assert accounts.sign_in("ada", Secret.from_text(PASSWORD)).actor == "user:ada"


def test_an_edited_failure_count_cannot_overflow_the_backoff(accounts: Accounts) -> None:
    store = accounts._gateway.store
    store.execute("UPDATE users SET failed_signins = ? WHERE name = 'ada'", [10**9])
    with pytest.raises(AccessDeniedError, match=r"^wrong user name or password$"):
        accounts.sign_in("ada", Secret.from_text("wrong"))
    [row] = accounts.users()
    assert row["failed_signins"] == 10**9 + 1 and row["locked_until"]
