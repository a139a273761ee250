"""What is due of a credential's life: its expiry, its rotation, and what its server says.

The owner's dates (``vault.credential_life``) say when a secret stops working
(``expires_at``) and how often it is to change (``rotate_every``, counted from
the last put: ``updated_at``, which only a put moves).  ``credentials due``,
GET /api/v1/due and the Due page list what falls within a window, overdue
first, soonest next; ``vault.notify.due_events`` raises the warnings.

A server may know an expiry the owner did not type (PostgreSQL's
``rolvaliduntil``, MySQL's password lifetime): the connection test's status
reports it (``server_expiries``), and it is listed as a third kind of due.
Disabled and deleted credentials are neither used nor tested: nothing of
theirs is due.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from agent_keys.errors import InvalidInputError
from vault.credential_life import stored_instant
from vault.credentials import CredentialService
from vault.format.life_input import DAY, describe_period, instant_text, parse_period
from vault.gateway import Gateway
from vault.health.status import reported_expiries
from vault.store.records import CredentialRecord

DueKind = Literal["expires", "rotation", "server-expiry"]

MAX_WITHIN_SECONDS = 3650 * DAY

ServerExpiry = Callable[[CredentialRecord], str | None]
"""The expiry a credential's server reported at its last test (an ISO instant), if any."""


def no_server_expiry(record: CredentialRecord) -> str | None:
    """No server-reported expiry: the seam until the tests' status reports one."""
    return None


@dataclass(frozen=True)
class Due:
    """One thing due of one credential: ``what`` falls at ``at``."""

    name: str
    what: DueKind
    at: datetime.datetime
    contact: str | None
    owner: str | None

    def days_left(self, now: datetime.datetime) -> int:
        """Whole days from ``now`` to ``at``, rounded down: negative when overdue."""
        return math.floor((self.at - now).total_seconds() / DAY)

    def view(self, now: datetime.datetime) -> dict[str, Any]:
        """The JSON form the CLI and API print."""
        return {
            "name": self.name,
            "what": self.what,
            "at": instant_text(self.at),
            "days_left": self.days_left(now),
            "overdue": self.at <= now,
            "contact": self.contact,
            "owner": self.owner,
        }


def parse_within(text: str) -> int:
    """The window of ``--within``/``?within=`` in seconds: ``0d`` (overdue only) to 10 years."""
    seconds = parse_period(text, "the window")
    if seconds > MAX_WITHIN_SECONDS:
        raise InvalidInputError(
            f"the window is at most 10 years (3650d), not {describe_period(seconds)}"
        )
    return seconds


def expiry_at(record: CredentialRecord) -> datetime.datetime | None:
    """The owner's expiry of ``record``, if set."""
    return stored_instant(record.life.expires_at)


def rotation_due_at(record: CredentialRecord) -> datetime.datetime | None:
    """When the secret is next to change: its last put plus the rotation period."""
    period, last_put = record.life.rotate_every, stored_instant(record.updated_at)
    if period is None or last_put is None:
        return None
    return last_put + datetime.timedelta(seconds=period)


def dues_of(record: CredentialRecord, server_expiry: ServerExpiry = no_server_expiry) -> list[Due]:
    """Everything dated of an active ``record``: expiry, rotation, server's expiry."""
    if record.state != "active":
        return []
    dated: list[tuple[DueKind, datetime.datetime | None]] = [
        ("expires", expiry_at(record)),
        ("rotation", rotation_due_at(record)),
        ("server-expiry", stored_instant(server_expiry(record))),
    ]
    return [
        Due(record.name, what, at, record.life.contact, record.owner)
        for what, at in dated
        if at is not None
    ]


def due_within(
    records: Iterable[CredentialRecord],
    now: datetime.datetime,
    within: int,
    server_expiry: ServerExpiry = no_server_expiry,
) -> list[Due]:
    """What of ``records`` falls due within ``within`` seconds of ``now`` (or is
    overdue), soonest first."""
    horizon = now + datetime.timedelta(seconds=within)
    found = [
        due for record in records for due in dues_of(record, server_expiry) if due.at <= horizon
    ]
    return sorted(found, key=lambda due: (due.at, due.name, due.what))


def due_report(gateway: Gateway, within: int) -> list[dict[str, Any]]:
    """What of the stored credentials is due within ``within`` seconds of now
    (or overdue), soonest first, in its JSON form (rows checked by ``list``);
    what the CLI, the API and the Due page show."""
    now = gateway.context.clock()
    records = CredentialService(gateway).list()
    reported = server_expiries(gateway, records)
    return [
        due.view(now)
        for due in due_within(records, now, within, lambda record: reported.get(record.name))
    ]


def server_expiries(gateway: Gateway, records: list[CredentialRecord]) -> Mapping[str, str]:
    """The expiry each of ``records``' servers reported, by name (an ISO instant):
    PostgreSQL ``rolvaliduntil``, MySQL's password lifetime, as the credential's
    checked status keeps it from its last successful test (``vault.health.status``)."""
    return reported_expiries(gateway, records)
