"""Guessing passwords and recovery keys: lockout that holds, and a full Argon2id per guess.

tests/vault/access/test_accounts.py already checks 5 failures -> lock, the doubling
backoff, and that the right password is refused while locked.  Added here: a
refusal while locked neither checks the password nor extends the lock and is
recorded as ``user.signin-refused``; the lock survives reopening the vault; the
backoff stops at its cap; and each wrong recovery key costs one Argon2id
derivation at the floor and leaves an unkeyed ``recovery-key.failed`` entry.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import agent_keys.recovery_key as recovery_key_module
from agent_keys.errors import AccessDeniedError, InvalidInputError
from agent_keys.recovery_key import FLOOR_MEMLIMIT, FLOOR_OPSLIMIT, RecoveryKdfParams
from agent_keys.secret import Secret
from tests.security.scale import scaled
from vault.access.accounts import FIRST_LOCK, FREE_FAILURES, LONGEST_LOCK, Accounts
from vault.context import RequestContext
from vault.gateway import Gateway
from vault.keys.recovery import RecoveryService

START = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.UTC)
PASSWORD = "a long enough sign-in phrase 4"
Recorder = Callable[[str, object], None]


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime.datetime:
        return self.now


def _open(data_dir: Path, clock: Clock) -> Gateway:
    return Gateway.open(data_dir, RequestContext(actor="test", channel="cli", clock=clock))


def _actions(gateway: Gateway) -> list[str]:
    return [event.action for event in gateway.store.audit_events()]


def _row(accounts: Accounts) -> dict[str, object]:
    [row] = accounts.users()
    return row


def _sign_in(accounts: Accounts, password: str) -> None:
    accounts.sign_in("ada", Secret.from_text(password))


def test_a_lock_refuses_every_attempt_survives_reopening_and_does_not_grow(
    data_dir: Path, record_property: Recorder
) -> None:
    clock = Clock()
    with _open(data_dir, clock) as gateway:
        accounts = Accounts(gateway)
        accounts.add_user("ada", "admin", Secret.from_text(PASSWORD))
        for _ in range(FREE_FAILURES):
            with pytest.raises(AccessDeniedError, match="wrong user name or password"):
                _sign_in(accounts, "wrong")
        locked = _row(accounts)
        assert locked["failed_signins"] == FREE_FAILURES and locked["locked_until"]
    attempts = scaled(10, 200)
    step = FIRST_LOCK / (attempts + 1)  # every attempt falls inside the lock
    with _open(data_dir, clock) as gateway:  # a restart does not unlock
        accounts = Accounts(gateway)
        for i in range(attempts):
            with pytest.raises(AccessDeniedError, match="try again in") as refused:
                _sign_in(accounts, PASSWORD if i % 2 else "wrong")
            assert "wrong user name" not in str(refused.value)
            clock.now += step
        # Refusals do not count as failures and do not move the lock.
        assert _row(accounts) == locked
        actions = _actions(gateway)
        assert actions.count("user.signin-refused") == attempts
        assert actions.count("user.signin-failed") == FREE_FAILURES
        assert actions.count("user.locked") == 1
        clock.now = START + FIRST_LOCK + datetime.timedelta(seconds=1)
        _sign_in(accounts, PASSWORD)
    record_property("cases", attempts)


def test_the_backoff_doubles_up_to_its_cap(data_dir: Path, record_property: Recorder) -> None:
    clock = Clock()
    with _open(data_dir, clock) as gateway:
        accounts = Accounts(gateway)
        accounts.add_user("ada", "admin", Secret.from_text(PASSWORD))
        locks: list[datetime.timedelta] = []
        for failure in range(1, FREE_FAILURES + 8):
            with pytest.raises(AccessDeniedError):
                _sign_in(accounts, "wrong")
            until = _row(accounts)["locked_until"]
            if failure < FREE_FAILURES:
                assert until is None
                continue
            assert isinstance(until, str)
            lock = datetime.datetime.fromisoformat(until) - clock.now
            locks.append(lock)
            clock.now += lock + datetime.timedelta(seconds=1)  # wait it out, then guess again
        expected = [min(FIRST_LOCK * 2**i, LONGEST_LOCK) for i in range(len(locks))]
        assert locks == expected and locks[-1] == LONGEST_LOCK
        assert _actions(gateway).count("user.locked") == len(locks)
    record_property("cases", FREE_FAILURES + 7)


def test_each_wrong_recovery_key_costs_a_full_argon2id_and_is_recorded(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, record_property: Recorder
) -> None:
    real_derive = recovery_key_module.derive_recovery_kek
    derivations: list[RecoveryKdfParams] = []

    def counting_derive(recovery_key: Secret, params: RecoveryKdfParams) -> Secret:
        derivations.append(params)
        return real_derive(recovery_key, params)

    monkeypatch.setattr(recovery_key_module, "derive_recovery_kek", counting_derive)
    attempts = scaled(2, 20)
    with _open(data_dir, Clock()) as gateway:
        recovery = RecoveryService(gateway)
        stored = {wrap.params for wrap in recovery.wraps()}
        assert all((p.opslimit, p.memlimit) >= (FLOOR_OPSLIMIT, FLOOR_MEMLIMIT) for p in stored), (
            stored
        )
        assert (FLOOR_OPSLIMIT, FLOOR_MEMLIMIT) == (3, 256 * 1024 * 1024)
        started = time.perf_counter()
        for i in range(attempts):
            with pytest.raises(InvalidInputError, match="does not open"):
                recovery.open(Secret.from_text(f"a wrong recovery key guess {i}"))
        per_attempt = (time.perf_counter() - started) / attempts
        # One derivation per guess, at the stored (floor or higher) parameters.
        assert len(derivations) == attempts and set(derivations) == stored
        failed = [e for e in gateway.store.audit_events() if e.action == "recovery-key.failed"]
        assert len(failed) == attempts
        assert all(e.mac is None and e.outcome == "refused" for e in failed)
        # Relative, not absolute: the same refusal with the KDF stubbed out is
        # what a guess would cost without Argon2id; the real one must dwarf it.
        monkeypatch.setattr(recovery_key_module, "derive_recovery_kek", _no_kdf)
        started = time.perf_counter()
        with pytest.raises(InvalidInputError):
            recovery.open(Secret.from_text("a guess without the KDF"))
        without_kdf = time.perf_counter() - started
    assert per_attempt >= 10 * without_kdf, (per_attempt, without_kdf)
    record_property("cases", attempts)


def _no_kdf(recovery_key: Secret, params: RecoveryKdfParams) -> Secret:
    return Secret(bytes(32))
