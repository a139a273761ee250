"""Web users' password hashes: Argon2id at the interactive cost, and what the
audit trail may record of a hash.

A check against an absent hash spends the same work on a dummy hash, so an
unknown user answers as slowly as a wrong password (T-WEB-5).
"""

from __future__ import annotations

import functools
import hashlib

import nacl.exceptions
from nacl.pwhash import argon2id

from agent_keys.secret import Secret

# Interactive Argon2id cost (libsodium's INTERACTIVE: 2 passes, 64 MiB): a
# sign-in must stay fast; the recovery key, used rarely, pays the higher floor.
_OPSLIMIT = argon2id.OPSLIMIT_INTERACTIVE
_MEMLIMIT = argon2id.MEMLIMIT_INTERACTIVE


def password_id(password_hash: str) -> str:
    """What the trail records of a password hash: a digest of the (salted Argon2id)
    hash, enough to tell hashes apart and nothing to guess a password with."""
    return hashlib.sha256(password_hash.encode("ascii")).hexdigest()[:32]


def hash_password(password: Secret) -> str:
    return argon2id.str(password.reveal(), opslimit=_OPSLIMIT, memlimit=_MEMLIMIT).decode("ascii")


@functools.cache
def _dummy_hash() -> bytes:
    return argon2id.str(b"gwvault-no-such-user", opslimit=_OPSLIMIT, memlimit=_MEMLIMIT)


def verify_password(stored: str | None, password: Secret) -> bool:
    """Whether ``password`` matches ``stored``; None (no such user) is never a match."""
    encoded = stored.encode("ascii") if stored else _dummy_hash()
    try:
        return bool(argon2id.verify(encoded, password.reveal())) and stored is not None
    except (nacl.exceptions.InvalidkeyError, nacl.exceptions.RuntimeError, ValueError):
        return False
