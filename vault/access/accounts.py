"""Local web accounts: users with Argon2id password hashes, sign-in with lockout, sessions.

Sign-in answers "wrong user name or password" for an unknown user, a wrong
password and a locked account alike, and spends the same Argon2id work on
each, so the page does not tell who has an account or whose is locked (T-WEB-5);
the lock is told to the server log and the audit trail instead.  After
``FREE_FAILURES`` wrong passwords in a row the account is locked for a time
that doubles with each further failure (capped).  Each attempt is counted,
and the lock set, in one write *before* the password is checked, so guesses
sent in parallel cannot all be checked against one count (a lost update).

Sessions live server-side: the browser holds a random id, the database its
SHA-256, the user and a CSRF token; signing out or removing the user ends them.

The vault keeps at least one admin: removing or demoting the last one is
refused inside the write that would do it, where the other admins are counted,
so two admins removing each other at once cannot leave none (writes follow one
another: SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's write lock).  Without an
admin nobody can manage users on the page until someone runs ``gwvault users
add`` on the gateway itself.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from agent_keys.errors import AccessDeniedError, ConflictError, InvalidInputError, NotFoundError
from agent_keys.recovery_key import check_passphrase_policy
from agent_keys.secret import Secret
from vault.access.acting_caller import ActingCaller
from vault.access.bearer_secrets import bearer_hash, new_bearer_secret
from vault.access.password_hashes import hash_password, password_id, verify_password
from vault.access.policy import Action, Principal, Role, parse_role
from vault.access.row_seal import TamperedRowError, record_refusal
from vault.gateway import Gateway

FREE_FAILURES = 5
FIRST_LOCK = datetime.timedelta(seconds=30)
LONGEST_LOCK = datetime.timedelta(minutes=15)
SESSION_LIFETIME = datetime.timedelta(hours=8)
_MAX_DOUBLINGS = 16  # far past LONGEST_LOCK / FIRST_LOCK
_USER_NAME_CHARS = 64
_WRONG_LOGIN = "wrong user name or password"
log = logging.getLogger("gwvault.access")


@dataclass(frozen=True)
class _Attempt:
    """One sign-in attempt, counted before its password is checked.

    ``row`` is None when there is no such user or the account is locked: the
    password is then checked against a dummy hash, for the same work."""

    row: dict[str, Any] | None
    failures: int = 0
    locked_until: str | None = None


@dataclass(frozen=True)
class WebSession:
    """A signed-in browser: who, until when, and the token its forms must echo."""

    principal: Principal
    csrf_token: str
    expires_at: datetime.datetime


class LastAdminError(ConflictError):
    """The change would leave the vault without an admin."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is the last admin; add another admin first")


class Accounts:
    """Users, sign-in and web sessions of one opened gateway vault.

    With a ``caller`` (a request to the endpoint), every change is authorized
    inside the write that makes it, as the database says then (T-WEB-12); the
    CLI's local operator has none.
    """

    def __init__(self, gateway: Gateway, caller: ActingCaller | None = None) -> None:
        self._gateway = gateway
        self._store = gateway.store
        self._audit = gateway.audit
        self._caller = caller

    # -- users ---------------------------------------------------------------

    def add_user(self, name: str, role: str, password: Secret) -> None:
        _check_user_name(name)
        checked_role = parse_role(role)
        check_passphrase_policy(password, "password")
        password_hash = hash_password(password)
        with self._deciding("users.manage", name, "add"):
            if self._user_row(name) is not None:
                raise ConflictError(f"a user named {name!r} already exists")
            self._store.execute(
                "INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
                [name, checked_role, password_hash, self._gateway.context.now_iso()],
            )
            self._gateway.rows.reseal("users", name)
            self._audit.record(
                "user.added", name, role=checked_role, password_id=password_id(password_hash)
            )

    def set_password(
        self, name: str, password: Secret, *, keep_session: bytes | None = None
    ) -> None:
        """Set ``name``'s password (an admin's act) and end that user's sessions:
        whoever held one with the old password is out.  ``keep_session`` (a
        session id's hash) spares the session the change was made from."""
        check_passphrase_policy(password, "password")
        password_hash = hash_password(password)
        with self._deciding("users.manage", name, "set-password"):
            row = self._required_user(name)
            self._write_password(row, password_hash, keep_session)

    def change_own_password(
        self, current: Secret, password: Secret, *, keep_session: bytes | None = None
    ) -> None:
        """The signed-in caller's own password, after its current one is proved.

        ``AccessDeniedError`` when ``current`` is wrong (counted like a failed
        sign-in, so a left-open session cannot be used to guess it); the
        caller's other sessions end, ``keep_session`` stays."""
        if self._caller is None or self._caller.principal.kind != "user":
            raise AccessDeniedError("only a signed-in user changes their own password")
        name = self._caller.principal.name
        check_passphrase_policy(password, "new password")
        try:
            self.prove_password(name, current)
        except AccessDeniedError as e:
            raise AccessDeniedError("the current password is not right; nothing was changed") from e
        password_hash = hash_password(password)
        with self._deciding("own-password.change", name, "change-own-password"):
            row = self._required_user(name)
            self._write_password(row, password_hash, keep_session)

    def _write_password(
        self, row: dict[str, Any], password_hash: str, keep_session: bytes | None
    ) -> None:
        name = row["name"]
        self._check_user(row)
        self._store.execute(
            "UPDATE users SET password_hash = ?, failed_signins = 0, locked_until = NULL"
            " WHERE name = ?",
            [password_hash, name],
        )
        self._gateway.rows.reseal("users", name)
        # A new password ends every session signed in with the old one, but the
        # one it was changed from: that person just proved who they are.
        self._store.execute(
            "DELETE FROM web_sessions WHERE user_name = ? AND id_hash != ?",
            [name, keep_session or b""],
        )
        self._audit.record(
            "user.password-changed", name, role=row["role"], password_id=password_id(password_hash)
        )

    def set_role(self, name: str, role: str) -> Role:
        """Give ``name`` another role; returns the role it had.  ``LastAdminError``
        when that would leave no admin.  The user's sessions stay: each request
        reads the role afresh."""
        new_role = parse_role(role)
        with self._deciding("users.manage", name, "set-role"):
            row = self._required_user(name)
            self._check_user(row)
            old_role = parse_role(row["role"])
            if old_role == new_role:
                return old_role
            if old_role == "admin":
                self._keep_an_admin(name)
            self._store.execute("UPDATE users SET role = ? WHERE name = ?", [new_role, name])
            self._gateway.rows.reseal("users", name)
            self._audit.record(
                "user.role-changed",
                name,
                role=new_role,
                previous_role=old_role,
                password_id=password_id(row["password_hash"]),
            )
        return old_role

    def remove_user(self, name: str) -> None:
        """Remove ``name`` and end its sessions; ``LastAdminError`` for the last admin."""
        with self._deciding("users.manage", name, "remove"):
            row = self._required_user(name)
            if row["role"] == "admin":
                self._keep_an_admin(name)
            self._store.execute("DELETE FROM web_sessions WHERE user_name = ?", [name])
            self._store.execute("DELETE FROM users WHERE name = ?", [name])
            self._audit.record("user.removed", name)

    def is_last_admin(self, name: str) -> bool:
        """Whether ``name`` is the only admin now: for a page to say so before
        asking.  The rule itself is enforced inside the write (``_keep_an_admin``)."""
        with self._store.reading():
            row = self._user_row(name)
            if row is None or row["role"] != "admin":
                return False
            try:
                self._keep_an_admin(name)
            except LastAdminError:
                return True
        return False

    def _keep_an_admin(self, name: str) -> None:
        """Refuse (``LastAdminError``) unless an admin other than ``name`` remains.

        Called inside the write that removes or demotes ``name``: the count and
        the change are one transaction.  Only admins whose rows are sealed and
        current count: a row planted in the file is nobody who could sign in."""
        others = self._store.rows("SELECT * FROM users WHERE role = 'admin' AND name != ?", [name])
        for row in others:
            with contextlib.suppress(TamperedRowError):
                self._check_user(row)
                return
        raise LastAdminError(name)

    @contextlib.contextmanager
    def _deciding(self, action: Action, name: str, change: str) -> Iterator[None]:
        """A write in which the caller's authorization is decided and the change made.

        A refusal rolls the write back, so it is recorded after, on its own
        (``access.refused`` for a caller without the right, ``user.change-refused``
        for the last admin)."""
        try:
            with self._store.write():
                if self._caller is not None:
                    self._caller.authorize(self._gateway, action)
                yield
        except AccessDeniedError as e:
            if self._caller is not None:
                self._audit.record(
                    "access.refused", name, "refused", refused_action=action, reason=str(e)[:200]
                )
            raise
        except LastAdminError:
            self._audit.record("user.change-refused", name, "refused", change=change,
                               reason="last-admin")  # fmt: skip
            raise
        except TamperedRowError as e:
            record_refusal(self._audit, e)
            raise

    def users(self) -> list[dict[str, Any]]:
        """Name, role, created and lock state; never the hash.  ``TamperedRowError``
        if a row was written outside gwvault (a planted or promoted user)."""
        rows = self._store.rows("SELECT * FROM users ORDER BY name", [])
        for row in rows:
            self._gateway.rows.check("users", row)
        return [{column: row[column] for column in _SHOWN} for row in rows]

    def user(self, name: str) -> dict[str, Any]:
        """One user as ``users`` shows it; ``NotFoundError`` if there is none."""
        row = self._required_user(name)
        self._gateway.rows.check("users", row)
        return {column: row[column] for column in _SHOWN}

    def count_users(self) -> int:
        return int(self._store.rows("SELECT count(*) AS n FROM users", [])[0]["n"])

    # -- sign-in ---------------------------------------------------------------

    def sign_in(self, name: str, password: Secret) -> Principal:
        """The user's principal; ``AccessDeniedError`` with one message for a wrong
        password, an unknown user and a locked account."""
        row = self._prove(name, password, "user.signed-in")
        return Principal("user", name, parse_role(row["role"]))

    def prove_password(self, name: str, password: Secret) -> None:
        """Prove ``name``'s password as a sign-in does (counted, locked, same
        answer for every failure), without signing in."""
        self._prove(name, password, None)

    def _prove(self, name: str, password: Secret, success: str | None) -> dict[str, Any]:
        now = self._gateway.context.clock()
        try:
            attempt = self._count_attempt(name, now)
        except TamperedRowError as e:
            # A planted or promoted user: refused like any wrong login, and recorded.
            record_refusal(self._audit, e)
            raise AccessDeniedError(_WRONG_LOGIN) from e
        # No such user, or locked: a dummy hash, so the answer takes as long.
        stored = attempt.row["password_hash"] if attempt.row else None
        if not verify_password(stored, password) or attempt.row is None:
            if attempt.row is not None:
                self._record_failure(name, attempt)
            raise AccessDeniedError(_WRONG_LOGIN)
        with self._store.write():
            self._store.execute(
                "UPDATE users SET failed_signins = 0, locked_until = NULL WHERE name = ?", [name]
            )
            if success is not None:
                self._audit.record(success, name)
        return attempt.row

    def _count_attempt(self, name: str, now: datetime.datetime) -> _Attempt:
        """Count the attempt (and lock at the limit) before any password is checked:
        a success resets the count, so every failure is counted exactly once."""
        if 0 < len(name) <= _USER_NAME_CHARS:
            with self._store.write():
                row = self._user_row(name)
                if row is not None:
                    return self._count_known(row, name, now)
        # No such user: nothing to count or lock.  Anyone can cause this entry,
        # so it is rate-limited per client address (vault.audit.coalesce).
        self._audit.record_unauthenticated("user.signin-failed", name[:_USER_NAME_CHARS], "failed")
        return _Attempt(None)

    def _count_known(self, row: dict[str, Any], name: str, now: datetime.datetime) -> _Attempt:
        """Inside the attempt's write: refuse a locked account, or count the failure
        ahead and lock at the limit."""
        self._check_user(row)
        failures, until = _lock_state(row)
        if until is not None and until > now:
            self._audit.record("user.signin-refused", name, "refused", reason="locked")
            log.warning("sign-in refused: user %r is locked until %s", name, until.isoformat())
            return _Attempt(None)
        failures += 1
        locked_until = None
        if failures >= FREE_FAILURES:
            # The exponent is bounded: a count edited in the file must not overflow.
            doublings = min(failures - FREE_FAILURES, _MAX_DOUBLINGS)
            lock = min(FIRST_LOCK * 2**doublings, LONGEST_LOCK)
            locked_until = (now + lock).isoformat()
        self._store.execute(
            "UPDATE users SET failed_signins = ?, locked_until = ? WHERE name = ?",
            [failures, locked_until, name],
        )
        return _Attempt(row, failures, locked_until)

    def _record_failure(self, name: str, attempt: _Attempt) -> None:
        with self._store.write():
            self._audit.record("user.signin-failed", name, "failed", failures=attempt.failures)
            if attempt.locked_until:
                self._audit.record("user.locked", name, "refused", until=attempt.locked_until)
        if attempt.locked_until:
            log.warning("user %r is locked until %s", name, attempt.locked_until)

    # -- sessions ------------------------------------------------------------------

    def open_session(self, principal: Principal) -> tuple[str, WebSession]:
        """A new session for a signed-in user: the cookie value (shown once) and the session."""
        random, now = self._gateway.context.random, self._gateway.context.clock()
        session_id, id_hash = new_bearer_secret(random)
        csrf_token, _ = new_bearer_secret(random)
        expires = now + SESSION_LIFETIME
        with self._store.write():
            self._store.execute(
                "INSERT INTO web_sessions (id_hash, user_name, csrf_token, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [id_hash, principal.name, csrf_token, now.isoformat(), expires.isoformat()],
            )
            self._gateway.rows.reseal("web_sessions", id_hash)
        return session_id, WebSession(principal, csrf_token, expires)

    def session(self, session_id: str) -> WebSession | None:
        """The live session for a cookie value, or None (unknown, expired, user gone)."""
        return self.session_by_hash(bearer_hash(session_id))

    def session_by_hash(self, id_hash: bytes) -> WebSession | None:
        """The live session by its stored hash (re-checked where a change is made)."""
        seal = self._gateway.rows
        sessions = self._store.rows(
            f"SELECT {seal.columns('web_sessions')} FROM web_sessions WHERE id_hash = ?",  # noqa: S608 - fixed columns
            [id_hash],
        )
        if not sessions:
            return None
        session = sessions[0]
        seal.check("web_sessions", session)  # a planted session signs nobody in
        if _parse(session["expires_at"]) <= self._gateway.context.clock():
            return None
        user = self._user_row(session["user_name"])
        if user is None:
            return None
        self._check_user(user)
        principal = Principal("user", user["name"], parse_role(user["role"]))
        return WebSession(principal, session["csrf_token"], _parse(session["expires_at"]))

    def close_session(self, session_id: str) -> None:
        self._store.execute("DELETE FROM web_sessions WHERE id_hash = ?", [bearer_hash(session_id)])

    def _check_user(self, row: dict[str, Any]) -> None:
        """The row's seal, and that it is the user the trail last recorded: not a
        removed user, nor an older password or role, put back from a copy of the file."""
        self._gateway.rows.check("users", row)
        current_id = password_id(row["password_hash"])

        def agrees(action: str, details: dict[str, Any]) -> bool:
            recorded = details.get("password_id")  # absent in entries before schema 4
            role = details.get("role")  # absent in password changes before roles changed
            return (
                action != "user.removed"
                and recorded in (None, current_id)
                and role in (None, row["role"])
            )

        self._gateway.rows.check_current("users", row["name"], row["name"], _USER_ACTIONS, agrees)

    def _user_row(self, name: str) -> dict[str, Any] | None:
        rows = self._store.rows("SELECT * FROM users WHERE name = ?", [name])
        return rows[0] if rows else None

    def _required_user(self, name: str) -> dict[str, Any]:
        row = self._user_row(name)
        if row is None:
            raise NotFoundError(f"no user named {name!r}; see: gwvault users list")
        return row


_SHOWN = ("name", "role", "created_at", "failed_signins", "locked_until")
_USER_ACTIONS = ("user.added", "user.password-changed", "user.role-changed", "user.removed")


def _check_user_name(name: str) -> None:
    # NFC only: "é" typed two ways would be two users who look the same.  "."
    # and ".." are path steps a browser folds away: no page could name them.
    if (
        not (0 < len(name) <= _USER_NAME_CHARS)
        or not name.isprintable()
        or name != name.strip()
        or unicodedata.normalize("NFC", name) != name
        or name in (".", "..")
    ):
        raise InvalidInputError(
            "a user name is 1-64 printable characters (Unicode NFC) without outer spaces"
        )


def _parse(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value)


def _lock_state(row: dict[str, Any]) -> tuple[int, datetime.datetime | None]:
    """Failures so far and the end of the lock, as stored.  A value that does not
    parse (the row was edited) counts as a lock without end: fail closed; an
    admin's ``users set-password`` clears it."""
    try:
        failures = int(row["failed_signins"])
        until = _parse(row["locked_until"]) if row["locked_until"] else None
        if until is not None and until.tzinfo is None:
            raise ValueError("a lock without a time zone")
    except (TypeError, ValueError):
        return FREE_FAILURES, datetime.datetime.max.replace(tzinfo=datetime.UTC)
    return failures, until
