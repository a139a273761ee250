"""How fresh an EncryptedCredential must be: the admin's limit on a seal's age.

A sealed blob is transport, not storage: it travels from the sealer to one
``put`` or ``test`` and is stored re-sealed at rest.  One that is hours old
was copied somewhere on the way (a ticket, a chat, a log), so the vault
refuses a blob whose ``iat`` is older than the limit, dated in the future
beyond clock skew, or older than the stored version it would replace (a
replayed old password).  The limit is an admin setting.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from agent_keys.errors import InvalidInputError
from vault.gateway import Gateway

DEFAULT_MAX_AGE = datetime.timedelta(hours=4)
SHORTEST_MAX_AGE = datetime.timedelta(minutes=5)
LONGEST_MAX_AGE = datetime.timedelta(days=7)
CLOCK_SKEW = datetime.timedelta(minutes=5)  # a sealer's clock may run this far ahead
_SETTING = "sealed_max_age_seconds"


@dataclass(frozen=True)
class SealPolicy:
    max_age: datetime.timedelta = DEFAULT_MAX_AGE

    def __post_init__(self) -> None:
        if not SHORTEST_MAX_AGE <= self.max_age <= LONGEST_MAX_AGE:
            raise InvalidInputError("the longest a seal may live is between 5m and 7d")

    def check(self, issued_at: int, now: datetime.datetime, stored_at: int | None) -> None:
        """Refuse (``InvalidInputError``) a blob sealed at ``issued_at`` that is
        stale at ``now``, from the future, or older than the stored version
        (``stored_at``, the ``iat`` or put time of what it would replace)."""
        # In seconds, not datetimes: an iat the format allows (up to 2**53) lies
        # past the year 9999 that datetime ends at, and must be refused, not crash.
        age = now.timestamp() - issued_at
        if age > self.max_age.total_seconds():
            raise InvalidInputError(
                f"the EncryptedCredential was sealed {_rounded(datetime.timedelta(seconds=age))}"
                f" ago, longer than the {_rounded(self.max_age)} a seal may live; seal it again"
            )
        if -age > CLOCK_SKEW.total_seconds():
            raise InvalidInputError(
                "the EncryptedCredential is dated in the future; check the sealer's clock"
            )
        if stored_at is not None and issued_at < stored_at:
            raise InvalidInputError(
                "the EncryptedCredential was sealed before the stored version of this"
                " credential was saved; seal the current secret again"
            )


def load_seal_policy(gateway: Gateway) -> SealPolicy:
    """The stored limit (a sealed row: ``TamperedRowError`` if it was altered)."""
    raw = gateway.rows.setting(_SETTING)
    if raw is None or not raw.isdigit():
        return SealPolicy()
    try:
        return SealPolicy(datetime.timedelta(seconds=int(raw)))
    except InvalidInputError:
        return SealPolicy()


def save_seal_policy(gateway: Gateway, policy: SealPolicy) -> None:
    with gateway.store.write():
        seconds = int(policy.max_age.total_seconds())
        gateway.rows.set_setting(_SETTING, str(seconds))
        gateway.audit.record("policy.changed", gateway.gateway_id, sealed_max_age=seconds)


def _rounded(delta: datetime.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 7200:
        return f"{seconds // 3600} h"
    if seconds >= 120:
        return f"{seconds // 60} min"
    return f"{seconds} s"
