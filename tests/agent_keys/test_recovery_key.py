import dataclasses

import pytest

from agent_keys.errors import InvalidInputError
from agent_keys.recovery_key import (
    CEILING_MEMLIMIT,
    FLOOR_MEMLIMIT,
    FLOOR_OPSLIMIT,
    RecoveryKdfParams,
    check_passphrase_policy,
    derive_recovery_kek,
)
from agent_keys.secret import Secret

SALT = b"s" * 16


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("short-key", "at least 12 characters"),
        ("password1234", "common passwords"),
        ("PASSWORD1234", "common passwords"),
        ("aaaaaaaaaaaaaaaa", "too easy to guess"),
        ("qwertyuiopasdfgh", "too easy to guess"),
        ("x" * 1025, "at most 1024"),
    ],
)
def test_weak_recovery_keys_are_refused(key: str, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason) as refused:
        check_passphrase_policy(Secret.from_text(key))
    assert key not in str(refused.value)


def test_a_random_passphrase_is_accepted() -> None:
    check_passphrase_policy(Secret.from_text("orbit walnut trellis quasar lantern 42"))


def test_non_utf8_recovery_key_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="UTF-8"):
        check_passphrase_policy(Secret(b"\xff\xfe" * 8))


def test_params_below_the_floor_or_above_the_ceiling_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="passes"):
        RecoveryKdfParams(salt=SALT, opslimit=FLOOR_OPSLIMIT - 1)
    with pytest.raises(InvalidInputError, match="memory"):
        RecoveryKdfParams(salt=SALT, memlimit=FLOOR_MEMLIMIT // 2)
    with pytest.raises(InvalidInputError, match="memory"):
        RecoveryKdfParams(salt=SALT, memlimit=CEILING_MEMLIMIT * 2)
    with pytest.raises(InvalidInputError, match="salt"):
        RecoveryKdfParams(salt=b"short")


def test_kdf_is_deterministic_salted_and_normalises_unicode() -> None:
    params = RecoveryKdfParams(salt=SALT)
    composed = Secret.from_text("caf\u00e9 orbit walnut trellis")
    decomposed = Secret.from_text("cafe\u0301 orbit walnut trellis")
    kek = derive_recovery_kek(composed, params)
    assert len(kek) == 32
    assert derive_recovery_kek(decomposed, params) == kek
    other_salt = dataclasses.replace(params, salt=b"t" * 16)
    assert derive_recovery_kek(composed, other_salt) != kek
