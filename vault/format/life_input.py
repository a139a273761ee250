"""The owner's dates of a credential as people type them: expiry, rotation, contact.

Each parser takes the text of a flag, a form field or a JSON member and
returns the canonical value ``vault.credential_life.LifeChange`` stores, None
for ``none`` (clear it), or raises ``InvalidInputError`` with one sentence.

- An expiry is a date, ``2027-03-31``, meaning the start of that day in UTC
  (the first instant the credential may no longer work: PostgreSQL's
  ``VALID UNTIL '2027-03-31'`` means the same, so warnings come early rather
  than late), or an instant with its offset, ``2027-03-31T18:00:00+02:00`` or
  ``...Z``.  A time without an offset is refused: it would mean the gateway's
  zone to one reader and the typist's to another.  Stored as UTC to the
  second (a fraction is dropped, which moves the expiry earlier, never later).
- A rotation period is a whole number of hours, days or weeks (``90d``,
  ``12w``, ``36h``), 1 day to 10 years.  Months and years have no fixed length,
  and ``m`` means minutes to ``gwvault policy set`` and ``entry-link create``,
  so neither is taken.  Stored as seconds.
- A contact is one e-mail address, ASCII, in the common dot-atom form (no
  quoted local parts, comments or IP literals): it goes into notifications
  and possibly an SMTP envelope, so anything an MTA might read two ways is
  refused.  Its domain is lower-cased.
"""

from __future__ import annotations

import datetime
import re

from agent_keys.errors import InvalidInputError

CLEAR = "none"

# Years outside this range are typos (20277) or placeholders (0001, 9999).
MIN_YEAR, MAX_YEAR = 2000, 2199
MAX_INSTANT_CHARS = 40

_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_INSTANT = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.[0-9]{1,9})?)?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))?"
)

DAY = 86400
MIN_ROTATION, MAX_ROTATION = DAY, 3650 * DAY
_PERIOD = re.compile(r"([0-9]{1,6})([hdw])")
_UNIT_SECONDS = {"h": 3600, "d": DAY, "w": 7 * DAY}
DEFAULT_WITHIN = "30d"  # how far ahead ``credentials due`` looks unless told

MAX_CONTACT_CHARS = 254  # RFC 5321's path limit, less the angle brackets
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_TOP_LABEL = re.compile(r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def parse_expiry(text: str) -> str | None:
    """An expiry date or instant as the ISO 8601 UTC instant stored (None: clear it)."""
    if text == CLEAR:
        return None
    shape = (
        "an expiry is a date (2027-03-31, the start of that day in UTC), an instant with"
        " its offset (2027-03-31T18:00:00+02:00 or ...Z), or none"
    )
    if len(text) > MAX_INSTANT_CHARS or not text.isascii():
        raise InvalidInputError(shape)
    date = _DATE.fullmatch(text)
    if date is not None:
        moment = _moment(shape, *date.groups(), "0", "0", "0", "+", "0", "0")
    else:
        instant = _INSTANT.fullmatch(text)
        if instant is None:
            raise InvalidInputError(shape)
        year, month, day, hour, minute, second, zulu, sign, off_h, off_m = instant.groups()
        if zulu is None and sign is None:
            raise InvalidInputError(
                f"the expiry {text} has no offset: add Z for UTC or the zone's offset"
                " (+02:00); a bare time means different instants to different readers"
            )
        moment = _moment(
            shape, year, month, day, hour, minute, second or "0", sign or "+", off_h or "0",
            off_m or "0",
        )  # fmt: skip
    return instant_text(moment)


def _moment(shape: str, *parts: str) -> datetime.datetime:
    year, month, day, hour, minute, second, sign, off_h, off_m = parts
    if not MIN_YEAR <= int(year) <= MAX_YEAR:
        raise InvalidInputError(f"an expiry's year is {MIN_YEAR} to {MAX_YEAR}, not {year}")
    try:
        offset = datetime.timedelta(hours=int(off_h), minutes=int(off_m))
        if offset >= datetime.timedelta(hours=24):
            raise ValueError("offset out of range")
        zone = datetime.timezone(-offset if sign == "-" else offset)
        return datetime.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=zone
        )
    except ValueError as e:  # 2027-02-30, 25:00, +24:00
        raise InvalidInputError(f"{shape}; this is not a real date and time") from e


def instant_text(moment: datetime.datetime) -> str:
    """The stored form of an instant: ISO 8601 in UTC, to the second."""
    return moment.astimezone(datetime.UTC).isoformat(timespec="seconds")


def parse_rotation(text: str) -> int | None:
    """A rotation period as the seconds stored (None: clear it)."""
    if text == CLEAR:
        return None
    seconds = parse_period(text, "a rotation period")
    if not MIN_ROTATION <= seconds <= MAX_ROTATION:
        raise InvalidInputError(
            f"a rotation period is 1 day to 10 years (3650d), not {describe_period(seconds)}"
        )
    return seconds


def parse_period(text: str, what: str) -> int:
    """A whole number of hours, days or weeks (``36h``, ``90d``, ``12w``), in seconds."""
    match = _PERIOD.fullmatch(text) if text.isascii() else None
    if match is None:
        raise InvalidInputError(
            f"{what} is a whole number of hours, days or weeks, like 90d, 12w or 36h"
            " (months and years have no fixed length: give days)"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def describe_period(seconds: int) -> str:
    """A period in the units it would be typed in: ``90d``, ``36h``."""
    return f"{seconds // DAY}d" if seconds % DAY == 0 else f"{seconds // 3600}h"


def parse_contact(text: str) -> str | None:
    """A contact e-mail address as stored, its domain lower-cased (None: clear it)."""
    if text == CLEAR:
        return None
    refusal = InvalidInputError(
        "a contact is one e-mail address, like dba@example.com (ASCII, at most"
        f" {MAX_CONTACT_CHARS} characters), or none"
    )
    if len(text) > MAX_CONTACT_CHARS or not text.isascii() or text.count("@") != 1:
        raise refusal
    local, domain = text.split("@")
    labels = domain.split(".")
    if (
        len(local) > 64
        or _LOCAL.fullmatch(local) is None
        or len(labels) < 2
        or not all(_LABEL.fullmatch(label) for label in labels)
        or _TOP_LABEL.fullmatch(labels[-1]) is None
    ):
        raise refusal
    return f"{local}@{domain.lower()}"
