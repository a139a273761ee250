"""The admin's recovery key: its policy and the Argon2id KDF that turns it into a KEK.

The recovery key is chosen by the admin and never stored.  Argon2id (RFC 9106)
stretches it into the recovery KEK that wraps the gateway master key; the salt
and cost parameters are stored beside the wrap.  Parameters read back from a
vault or a bundle are checked against a floor (so nobody can downgrade the
cost) and a ceiling (so a hostile bundle cannot make us allocate 64 GiB).
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

import nacl.exceptions
from nacl.pwhash import argon2id

from agent_keys.errors import IntegrityError, InvalidInputError
from agent_keys.keywrap import unwrap_key
from agent_keys.master_key import MasterKey, master_key_context
from agent_keys.randomness import RandomSource
from agent_keys.secret import Secret

MIN_RECOVERY_KEY_CHARS = 12
MAX_RECOVERY_KEY_CHARS = 1024
# zxcvbn's score 3 is "safely unguessable: moderate protection from offline
# slow-hash scenario (guesses < 10^10)" - the recovery wrap is exactly that case.
MIN_ZXCVBN_SCORE = 3
# zxcvbn's matching is super-linear in length; its estimate saturates long before this.
_ZXCVBN_PREFIX_CHARS = 100

SALT_BYTES = 16
MIB = 1024 * 1024
FLOOR_OPSLIMIT = 3
FLOOR_MEMLIMIT = 256 * MIB
CEILING_OPSLIMIT = 16
CEILING_MEMLIMIT = 4096 * MIB


@dataclass(frozen=True)
class RecoveryKdfParams:
    """Argon2id salt and cost, stored in the vault and in every recovery bundle."""

    salt: bytes
    opslimit: int = FLOOR_OPSLIMIT
    memlimit: int = FLOOR_MEMLIMIT

    def __post_init__(self) -> None:
        if len(self.salt) != SALT_BYTES:
            raise InvalidInputError("recovery KDF salt must be 16 bytes")
        if not FLOOR_OPSLIMIT <= self.opslimit <= CEILING_OPSLIMIT:
            raise InvalidInputError(
                f"recovery KDF passes {self.opslimit} outside {FLOOR_OPSLIMIT}..{CEILING_OPSLIMIT}"
            )
        if not FLOOR_MEMLIMIT <= self.memlimit <= CEILING_MEMLIMIT:
            raise InvalidInputError(
                f"recovery KDF memory {self.memlimit // MIB} MiB outside "
                f"{FLOOR_MEMLIMIT // MIB}..{CEILING_MEMLIMIT // MIB} MiB"
            )

    @classmethod
    def fresh(cls, random: RandomSource) -> RecoveryKdfParams:
        """New parameters at the floor cost (about 0.7 s and 256 MiB here)."""
        return cls(salt=random(SALT_BYTES))


def check_passphrase_policy(recovery_key: Secret, what: str = "recovery key") -> None:
    """Refuse a passphrase (the recovery key, a web password) that is short,
    common or easily guessed.

    Raises ``InvalidInputError`` with what to do; the message never quotes it.
    """
    text = _normalized_text(recovery_key)
    if len(text) < MIN_RECOVERY_KEY_CHARS:
        raise InvalidInputError(
            f"the {what} must be at least {MIN_RECOVERY_KEY_CHARS} characters;"
            " use a passphrase of several random words"
        )
    if len(text) > MAX_RECOVERY_KEY_CHARS:
        raise InvalidInputError(f"the {what} must be at most {MAX_RECOVERY_KEY_CHARS} characters")
    if _is_common_password(text):
        raise InvalidInputError(f"the {what} is in a list of common passwords; choose another")
    # Imported here: zxcvbn loads 30k-word lists, which `gwvault --help` must not pay for.
    from zxcvbn import zxcvbn

    if zxcvbn(text[:_ZXCVBN_PREFIX_CHARS])["score"] < MIN_ZXCVBN_SCORE:
        raise InvalidInputError(
            f"the {what} is too easy to guess; use a passphrase of four or"
            " more random words, or 16+ random characters"
        )


def derive_recovery_kek(recovery_key: Secret, params: RecoveryKdfParams) -> Secret:
    """Argon2id(recovery key, salt) -> 32-byte recovery KEK.

    The key is NFC-normalised first (RFC 8265's OpaqueString rule), so the same
    words typed on another operating system or keyboard give the same KEK.
    """
    password = _normalized_text(recovery_key).encode("utf-8")
    try:
        kek = argon2id.kdf(
            32, password, params.salt, opslimit=params.opslimit, memlimit=params.memlimit
        )
    except (nacl.exceptions.RuntimeError, MemoryError) as e:
        raise InvalidInputError("not enough memory for the recovery key derivation") from e
    return Secret(kek)


def _normalized_text(recovery_key: Secret) -> str:
    try:
        return unicodedata.normalize("NFC", recovery_key.reveal_text())
    except UnicodeDecodeError as e:
        raise InvalidInputError("the passphrase is not valid UTF-8 text") from e


@functools.cache
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def _is_common_password(text: str) -> bool:
    return text.lower() in _common_passwords()


@dataclass(frozen=True)
class RecoveryWrap:
    """One GMK version wrapped by a recovery KEK, with the KDF parameters to rebuild it."""

    version: int
    wrapped: bytes
    params: RecoveryKdfParams


def unwrap_with_recovery_key(
    gateway_id: str, wraps: list[RecoveryWrap], recovery_key: Secret
) -> dict[int, MasterKey]:
    """Every GMK version the wraps hold; ``IntegrityError`` if the key opens none of them.

    One Argon2id derivation per distinct parameter set (normally one).
    """
    keks: dict[RecoveryKdfParams, Secret] = {}
    keys: dict[int, MasterKey] = {}
    for wrap in wraps:
        if wrap.params not in keks:
            keks[wrap.params] = derive_recovery_kek(recovery_key, wrap.params)
        context = master_key_context(gateway_id, wrap.version)
        keys[wrap.version] = MasterKey(
            wrap.version, unwrap_key(keks[wrap.params], wrap.wrapped, context)
        )
    if not keys:
        raise IntegrityError("no master key to unwrap")
    return keys
