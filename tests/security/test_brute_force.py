"""Guessing passwords and recovery keys: lockout that holds, and a full Argon2id per guess.

tests/vault/access/test_accounts.py already checks 5 failures -> lock, the doubling
backoff, and that the right password is refused while locked.  Added here: a
refusal while locked neither checks the password nor extends the lock and is
recorded as ``user.signin-refused``; the lock survives reopening the vault; the
backoff stops at its cap; guesses sent all at once over real HTTPS get no more
checks of the password than the policy allows, and a locked account answers
byte for byte like a wrong password and an unknown user (T-WEB-5); and each
wrong recovery key costs one Argon2id derivation at the floor and leaves an
unkeyed ``recovery-key.failed`` entry.
"""

from __future__ import annotations

import datetime
import html
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.client import HTTPSConnection
from pathlib import Path
from urllib.parse import urlencode

import pytest
from nacl.pwhash import argon2id

import agent_keys.recovery_key as recovery_key_module
from agent_keys.errors import AccessDeniedError, InvalidInputError
from agent_keys.recovery_key import FLOOR_MEMLIMIT, FLOOR_OPSLIMIT, RecoveryKdfParams
from agent_keys.secret import Secret
from tests.security.scale import scaled
from tests.web_fixtures import PASSWORDS, LiveServer
from vault.access.accounts import FIRST_LOCK, FREE_FAILURES, LONGEST_LOCK, Accounts
from vault.context import RequestContext
from vault.gateway import Gateway
from vault.keys.recovery import RecoveryService
from vault.keys.tls import TlsService

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
            # The same answer as a wrong password, even for the right one (T-WEB-5).
            with pytest.raises(AccessDeniedError, match=r"^wrong user name or password$"):
                _sign_in(accounts, PASSWORD if i % 2 else "wrong")
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


# More guesses than the server has worker threads (16), all sent at once.
PARALLEL_GUESSES = 24
Answer = tuple[int, tuple[tuple[str, str], ...], bytes]


def _pinned_tls(server: LiveServer) -> ssl.SSLContext:
    """A client context that trusts the endpoint's own certificate and nothing else."""
    with server.web_vault.gateway() as gateway:
        chain = TlsService(gateway).server_identity().chain_pem
    context = ssl.create_default_context(cadata=chain.decode("ascii"))
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # the self-signed leaf is the anchor
    return context


@contextmanager
def _connected(server: LiveServer, context: ssl.SSLContext) -> Iterator[HTTPSConnection]:
    connection = HTTPSConnection("127.0.0.1", server.port, context=context, timeout=60)
    try:
        connection.connect()  # the handshake first, so that the guesses go out together
        yield connection
    finally:
        connection.close()


def _sign_in_answer(
    connection: HTTPSConnection, server: LiveServer, name: str, password: str
) -> Answer:
    """Status, headers (but the date and length) and body of one sign-in over HTTPS,
    with the name the form gives back to its typist made one placeholder: the
    echo is what was typed, so it tells nothing about the account."""
    form = urlencode({"name": name, "password": password})
    headers = {"Origin": server.url, "Content-Type": "application/x-www-form-urlencoded"}
    connection.request("POST", "/signin", form, headers)
    response = connection.getresponse()
    echo = f'name="name" value="{html.escape(name)}"'.encode()
    body = response.read()
    assert body.count(echo) == 1, body
    body = body.replace(echo, b'name="name" value="(typed)"')
    ignored = {"date", "content-length"}
    kept = tuple(sorted((k, v) for k, v in response.getheaders() if k.lower() not in ignored))
    return response.status, kept, body


def test_parallel_guesses_over_https_are_all_counted_and_a_lock_looks_like_a_wrong_password(
    live_server: LiveServer,
    monkeypatch: pytest.MonkeyPatch,
    record_property: Recorder,
) -> None:
    with live_server.web_vault.gateway() as gateway:
        [row] = gateway.store.rows("SELECT password_hash FROM users WHERE name = 'ada'", [])
    ada_hash = str(row["password_hash"]).encode("ascii")
    verified: list[bytes] = []  # the stored hash each Argon2id verification was run against
    real_verify = argon2id.verify

    def counting_verify(encoded: bytes, password: bytes) -> bool:
        verified.append(encoded)
        return real_verify(encoded, password)

    monkeypatch.setattr(argon2id, "verify", counting_verify)
    tls = _pinned_tls(live_server)
    start = threading.Barrier(PARALLEL_GUESSES)

    def guess(i: int) -> Answer:
        with _connected(live_server, tls) as connection:
            start.wait(timeout=60)
            return _sign_in_answer(connection, live_server, "ada", f"wrong guess number {i}")

    with ThreadPoolExecutor(PARALLEL_GUESSES) as pool:
        answers = list(pool.map(guess, range(PARALLEL_GUESSES)))
    # The lost update let every parallel guess check the password: the policy allows 5.
    assert verified.count(ada_hash) == FREE_FAILURES, len(verified)
    # Refused or not, every answer cost one Argon2id: no timing tells a lock apart.
    assert len(verified) == PARALLEL_GUESSES
    with live_server.web_vault.gateway() as gateway:
        [state] = [r for r in Accounts(gateway).users() if r["name"] == "ada"]
        actions = _actions(gateway)
    assert state["failed_signins"] == FREE_FAILURES and state["locked_until"]
    assert actions.count("user.signin-failed") == FREE_FAILURES
    assert actions.count("user.locked") == 1
    assert actions.count("user.signin-refused") == PARALLEL_GUESSES - FREE_FAILURES

    with _connected(live_server, tls) as connection:
        locked = _sign_in_answer(connection, live_server, "ada", PASSWORDS["ada"])
        wrong = _sign_in_answer(connection, live_server, "otto", "not otto's password")
        unknown = _sign_in_answer(connection, live_server, "nobody", "not anyone's password")
    assert locked[0] == 403 and b"wrong user name or password" in locked[2]
    # Byte for byte: nothing tells a locked account from a wrong password or no account.
    assert locked == wrong == unknown
    assert set(answers) == {wrong}
    record_property("cases", PARALLEL_GUESSES + 3)


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
