"""A stored credential's life beside its secret: disabled, deleted, purged, expiring.

A delete is soft: the row stays for the retention window (the setting
``credentials_retention_days``, 7 to 90, default 30), opens for nobody, and
keeps its name reserved; a restore brings it back intact, a purge (an admin,
or the scheduled job once the window has passed) deletes the row and with it
the wrapped data key, so the secret is gone for good (crypto-shred).  A
disabled credential is kept but neither used nor tested.

Every change is a trail entry that carries the credential's life as it now
is (``life_details``): the row check (``CredentialService._checked``) refuses
a row whose life the newest entry does not describe, so putting back an older
copy of a row (a disabled credential enabled again, a deleted one alive) is
seen, as an older version is.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from agent_keys.errors import ConflictError, InvalidInputError
from vault.format.life_input import instant_text, parse_contact, parse_expiry, parse_rotation
from vault.store.records import CredentialLife, CredentialRecord

T = TypeVar("T")

RETENTION_SETTING = "credentials_retention_days"
DEFAULT_RETENTION_DAYS = 30
MIN_RETENTION_DAYS, MAX_RETENTION_DAYS = 7, 90

# The trail entries that change which version of a credential is stored, or its life.
LIFE_ACTIONS = (
    "credential.created",
    "credential.updated",
    "credential.deleted",
    "credential.restored",
    "credential.purged",
    "credential.disabled",
    "credential.enabled",
    "credential.life-changed",
)


class Keep(enum.Enum):
    """A ``LifeChange`` field that keeps the stored value."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True)
class LifeChange:
    """The owner's dates a put or an edit sets; ``KEEP`` keeps the stored value,
    None clears it.  Values are canonical (checked where they were parsed):
    ``expires_at`` an ISO 8601 UTC instant, ``rotate_every`` seconds, ``contact``
    an address."""

    expires_at: str | Keep | None = KEEP
    rotate_every: int | Keep | None = KEEP
    contact: str | Keep | None = KEEP

    def applied_to(self, life: CredentialLife | None) -> CredentialLife:
        """``life`` (a new credential's: None) with this change made."""
        life = life or CredentialLife()
        changed = {
            field.name: getattr(self, field.name)
            for field in fields(self)
            if getattr(self, field.name) is not KEEP
        }
        return CredentialLife(**{**life.columns(), **changed})


class CredentialUnavailableError(ConflictError):
    """The credential is disabled or deleted: it is neither used nor tested."""


def life_details(record: CredentialRecord) -> dict[str, Any]:
    """What a trail entry records of a credential's life (never a secret): its
    id, version and state, and the owner's dates, as the row now holds them."""
    life = record.life
    return {
        "credential_id": record.binding.credential_id,
        "version": record.binding.version,
        "state": life.state,
        "purge_after": life.purge_after,
        "expires_at": life.expires_at,
        "rotate_every": life.rotate_every,
        "contact": life.contact,
    }


def entry_describes(action: str, details: dict[str, Any], record: CredentialRecord) -> bool:
    """Whether the newest trail entry ``action``/``details`` of a credential's
    name describes ``record`` as stored.

    A purge, or a delete from before soft deletes (no state), left no row; an
    entry from before schema 7 carries no life, which then must be the default.
    """
    if action == "credential.purged" or (action == "credential.deleted" and "state" not in details):
        return False
    recorded = {key: details.get(key) for key in life_details(record)}
    recorded["state"] = recorded["state"] or "active"
    return recorded == life_details(record)


def check_usable(record: CredentialRecord) -> None:
    """Refuse (``CredentialUnavailableError``) a credential that is not active."""
    life = record.life
    if life.state == "deleted":
        raise CredentialUnavailableError(
            f"the credential {record.name} is deleted; it opens for nobody until it is restored"
            f" (gwvault credentials restore {record.name}, before {life.purge_after})"
        )
    if life.state == "disabled":
        raise CredentialUnavailableError(
            f"the credential {record.name} is disabled; enable it first"
            f" (gwvault credentials enable {record.name})"
        )


def check_name_free(record: CredentialRecord | None) -> None:
    """A deleted credential's name is reserved: refuse a put over it."""
    if record is not None and record.life.state == "deleted":
        raise CredentialUnavailableError(
            f"the name {record.name} belongs to a deleted credential until"
            f" {record.life.purge_after};"
            f" restore it (gwvault credentials restore {record.name}) or purge it"
            f" (gwvault credentials purge {record.name}) first"
        )


def parse_retention_days(text: str | int) -> int:
    """A retention window in whole days, 7 to 90; ``InvalidInputError`` otherwise."""
    value = str(text).strip()
    if not value.isascii() or not value.isdigit() or len(value) > 3:
        raise InvalidInputError(
            f"the retention is a whole number of days from {MIN_RETENTION_DAYS}"
            f" to {MAX_RETENTION_DAYS}"
        )
    days = int(value)
    if not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
        raise InvalidInputError(
            f"the retention must be {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS} days"
            f" (deleted credentials are kept that long before they are purged), not {days}"
        )
    return days


def deleted_life(
    life: CredentialLife, now: datetime.datetime, retention_days: int
) -> CredentialLife:
    """``life`` deleted at ``now``, to be purged ``retention_days`` later."""
    purge_after = now + datetime.timedelta(days=retention_days)
    return CredentialLife(
        disabled_at=life.disabled_at,
        deleted_at=instant_text(now),
        purge_after=instant_text(purge_after),
        expires_at=life.expires_at,
        rotate_every=life.rotate_every,
        contact=life.contact,
    )


def is_past(instant: str | None, now: datetime.datetime) -> bool:
    """Whether the stored ISO instant ``instant`` is at or before ``now``
    (an unreadable one is not: the row check has refused a planted value)."""
    moment = stored_instant(instant)
    return moment is not None and moment <= now


def stored_instant(text: str | None) -> datetime.datetime | None:
    """A stored ISO instant (with its offset) as a time; None when unset or unreadable."""
    if text is None:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def life_change_of(
    expires_at: str | Keep | None = KEEP,
    rotate_every: str | Keep | None = KEEP,
    contact: str | Keep | None = KEEP,
) -> LifeChange:
    """The change a flag, form field or JSON member asks for, each as typed
    (``vault.format.life_input``: ``none`` clears), None to clear, ``KEEP`` to keep."""

    def parsed(value: str | Keep | None, parse: Callable[[str], T | None]) -> T | Keep | None:
        return value if value is KEEP or value is None else parse(value)

    return LifeChange(
        expires_at=parsed(expires_at, parse_expiry),
        rotate_every=parsed(rotate_every, parse_rotation),
        contact=parsed(contact, parse_contact),
    )
