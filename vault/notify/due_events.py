"""Warnings before a credential breaks: expiring, expired, rotation due.

``raise_due_events`` is the scheduler's job on each tick.  It raises
(``vault.notify.events.raise_event``) ``credential.expiring`` 30, 7 and 1 days
before the owner's expiry, ``credential.expired`` once it has passed, and
``credential.rotation-due`` once the rotation period has passed since the last
put; each once per credential, stage and date.  A scheduler that was down
raises only the most urgent stage that applies (not 30, 7 and 1 at once).

What was raised already is read from the audit trail, not from a table of its
own: the newest MACed entry of the kind for the credential's name
(``RowSeal.latest_audited``) says which credential (id), which date and which
stage it warned of.  A database writer can neither forge such an entry (no
audit key) nor delete one without breaking the chain, so suppressing or
replaying a warning is as hard as editing the trail; an entry that does not
verify is recorded as refused and the warning raised again.  A new date, or a new
credential under the same name, starts over.  The check and the event are
one write, so two runs at once do not both raise; the row is checked (seal,
and the trail's word on its life) in that write too.  Disabled and deleted
credentials get no warnings.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from agent_keys.errors import NotFoundError
from vault.access.row_seal import TamperedRowError, record_refusal
from vault.audit.trail import DetailValue
from vault.credential_due import expiry_at, rotation_due_at
from vault.credentials import CredentialService
from vault.format.life_input import instant_text
from vault.gateway import Gateway
from vault.notify.events import EventKind, raise_event
from vault.store.records import CredentialRecord

WARNING_DAYS = (30, 7, 1)  # before the expiry, farthest first


@dataclass(frozen=True)
class DueEvent:
    """One warning to raise: its kind and the details that identify it."""

    kind: EventKind
    details: dict[str, DetailValue]

    def raised_already(self, latest: tuple[str, dict[str, Any]] | None) -> bool:
        """Whether the newest entry of this kind (action, details) warned of this
        (or, for an expiry warning, of a later stage of the same date)."""
        if latest is None:
            return False
        _, before = latest
        key = ("credential_id", "expires_at", "due_at")
        if any(before.get(name) != self.details.get(name) for name in key):
            return False
        days, days_before = self.details.get("days_before"), before.get("days_before")
        if isinstance(days, int) and isinstance(days_before, int):
            return days_before <= days
        return days == days_before


def due_events(record: CredentialRecord, now: datetime.datetime) -> list[DueEvent]:
    """The warnings ``record`` calls for at ``now`` (before any check of the trail)."""
    if record.state != "active":
        return []
    life, events = record.life, []
    common: dict[str, DetailValue] = {
        "credential_id": record.binding.credential_id,
        "contact": life.contact,
    }
    expires = expiry_at(record)
    if expires is not None:
        stage = _stage(expires, now)
        if stage == 0:
            events.append(DueEvent("credential.expired", {**common, "expires_at": life.expires_at}))
        elif stage is not None:
            details = {**common, "expires_at": life.expires_at, "days_before": stage}
            events.append(DueEvent("credential.expiring", details))
    rotation = rotation_due_at(record)
    if rotation is not None and rotation <= now:
        due_at = instant_text(rotation)
        details = {**common, "due_at": due_at, "rotate_every": life.rotate_every,
                   "last_put": record.updated_at}  # fmt: skip
        events.append(DueEvent("credential.rotation-due", details))
    return events


def _stage(expires: datetime.datetime, now: datetime.datetime) -> int | None:
    """0 once expired; else the nearest warning stage (days) reached; None before any."""
    if expires <= now:
        return 0
    reached = [days for days in WARNING_DAYS if expires - datetime.timedelta(days=days) <= now]
    return min(reached) if reached else None


def raise_due_events(gateway: Gateway, now: datetime.datetime) -> list[tuple[EventKind, str]]:
    """Raise every warning due at ``now`` not raised before; returns (kind, name)
    of those raised.  A credential whose row does not check is skipped, and the
    refusal recorded, so one tampered row silences no other credential."""
    store, service = gateway.store, CredentialService(gateway)
    raised: list[tuple[EventKind, str]] = []
    # Every row is checked (its seal, and the trail's word on its life), not
    # only those that look due: a row whose expiry was moved away, or an older
    # copy put back, would otherwise be skipped unseen.  Each candidate is read
    # and checked again in the write that raises its events.
    candidates = [name for name in _names(store.credentials()) if _checked_due(service, name, now)]
    for name in candidates:
        kinds: list[EventKind] = []
        doubts: list[TamperedRowError] = []
        try:
            with store.write():
                record = service.get(name)
                for event in due_events(record, now):
                    try:
                        latest = gateway.rows.latest_audited(name, (event.kind,))
                    except TamperedRowError as e:
                        # An entry that does not verify proves nothing: warn
                        # (twice, at worst) rather than be silenced by it.
                        doubts.append(e)
                        latest = None
                    if not event.raised_already(latest):
                        raise_event(gateway, event.kind, name, **event.details)
                        kinds.append(event.kind)
        except NotFoundError:
            continue  # purged since the first pass
        except TamperedRowError as e:
            doubts.append(e)
        for doubt in doubts:
            record_refusal(gateway.audit, doubt)
        raised.extend((kind, name) for kind in kinds)
    return raised


def _names(records: list[CredentialRecord]) -> list[str]:
    return [record.name for record in records]


def _checked_due(service: CredentialService, name: str, now: datetime.datetime) -> bool:
    """Whether the checked row of ``name`` calls for a warning (a refused row,
    recorded by ``get``, does not)."""
    try:
        return bool(due_events(service.get(name), now))
    except (NotFoundError, TamperedRowError):
        return False
